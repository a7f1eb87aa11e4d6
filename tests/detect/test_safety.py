from __future__ import annotations

import pytest

from phimask.detect import PatternError, UnsafePatternError, check_pattern_safe, custom_detector


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a+)+", "nested unbounded repetition"),
        (r"(\d*)*", "nested unbounded repetition"),
        (r"(\d+){1,3}", "nested unbounded repetition"),  # unbounded inside a repeat
        (r"(\d+){1,5}", "variable-length group more than 4 times"),
        (r"(a|aa)*", "alternation inside unbounded repetition"),
        (r"(?=x)y", "lookahead/lookbehind"),
        (r"(?<!x)y", "lookahead/lookbehind"),
        (r"(a)\1", "backreferences"),
        (r"(a)?(?(1)b|c)", "conditional groups"),
        (r"a*", "empty string"),
        (r"(?:x?)", "empty string"),
        (r"\d+\d+", "adjacent repetitions"),
        (r"\w+\s*\w+", "adjacent repetitions"),
        (r"^MRN\d{6}$", "anchors"),
        (r"a{,3}", "{,n}"),
        (r"(?>ab)", "atomic groups"),
        (r"a++", "possessive"),
        (r"(?s)a.b", "(?i) inline flag"),
        (r"[[:digit:]]", "ambiguous regular expression"),
        (r"(unclosed", "invalid regular expression"),
        ("é\\d", "must be ASCII"),
        (r"\xe9\d", "non-ASCII"),
        ("a" * 1001, "longer than 1000"),
    ],
)
def test_rejects(pattern: str, reason: str) -> None:
    with pytest.raises(UnsafePatternError) as info:
        check_pattern_safe(pattern)
    assert reason in info.value.reason
    assert isinstance(info.value, PatternError)


@pytest.mark.parametrize(
    "pattern",
    [
        r"MRN-\d{8}",
        r"[A-Z]{2}\d{6,9}",
        r"(?i)member[-: ]?\d{6,12}",
        r"(?:\d{1,3}\.){3}\d{1,3}",
        r"[a-z0-9._%+-]{1,64}@(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,63}",
        r"\bPT\d+\b",
        r"(?:ab?)+c",
        r"\d+-\d+",
        r"(?:Jan|Feb) \d{1,2}",
        r"a" * 1000,
    ],
)
def test_accepts(pattern: str) -> None:
    check_pattern_safe(pattern)


def test_message_shows_only_the_pattern_and_reason() -> None:
    with pytest.raises(UnsafePatternError) as info:
        custom_detector("ticket", r"(T\d+)+")
    assert str(info.value) == (
        "detector 'ticket': unsafe pattern '(T\\\\d+)+': nested unbounded repetition"
    )


def test_long_pattern_is_not_echoed() -> None:
    with pytest.raises(UnsafePatternError) as info:
        check_pattern_safe("x" * 5000)
    assert "xxxx" not in str(info.value)


def test_custom_detector_defaults() -> None:
    d = custom_detector("badge_id", r"BDG\d{5}")
    assert (d.name, d.label, d.boundary, d.case_insensitive, d.validator) == (
        "badge_id",
        "BADGE_ID",
        "none",
        False,
        None,
    )
    assert custom_detector("x", r"X\d", "THING").label == "THING"
