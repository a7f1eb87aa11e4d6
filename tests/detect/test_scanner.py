"""Scanner mechanics: offsets, batching, redaction, overlaps, errors, threads."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from phimask.detect import (
    Detector,
    Match,
    PatternError,
    Scanner,
    builtin_detectors,
    custom_detector,
)
from phimask.detect import scanner as scanner_module
from tests.detect.conftest import builtin_scanner, found
from tests.detect.corpus import realistic_corpus


def label(m: Match) -> str:
    return f"[REDACTED:{m.detector.label}]"


def test_offsets_are_str_offsets(scanner: Scanner) -> None:
    text = "Zoë's SSN 123-45-6789 ✓"
    (m,) = scanner.scan(text)
    assert (m.start, m.end, m.detector.name) == (10, 21, "ssn")
    astral = "😀😀 call 555-234-5678 😀 mail a@b.io"
    assert found(scanner, astral) == [("phone", "555-234-5678"), ("email", "a@b.io")]
    assert scanner.scan(astral)[0].start == 8


def test_empty_inputs(scanner: Scanner) -> None:
    assert scanner.scan_many([]) == []
    assert scanner.scan_many(["", "", ""]) == [[], [], []]
    assert scanner.scan("") == []
    assert scanner.redact_many([], label) == []


def test_many_texts_land_in_the_right_text(scanner: Scanner) -> None:
    rng = random.Random(3)
    phi = ["123-45-6789", "555-234-5678", "a.b@example.org", "4111111111111111", "10.1.2.3"]
    texts, expected = [], []
    for i in range(3000):
        if rng.random() < 0.3:
            value = rng.choice(phi)
            prefix = rng.choice(["", "x ", "Zoë ", "✓✓ ", "id="]) * rng.randint(0, 2)
            texts.append(f"{prefix}{value} #{i}")
            expected.append([(len(prefix), len(prefix) + len(value))])
        else:
            texts.append(rng.choice(["", "ok", "GET /a/b", "naïve", f"n{i}"]))
            expected.append([])
    got = [[(m.start, m.end) for m in ms] for ms in scanner.scan_many(texts)]
    assert got == expected


@pytest.mark.parametrize(
    "texts",
    [
        ["call 555-234", "5678 now"],
        ["123-45-", "6789"],
        ["mail john@", "example.com"],
        ["4111 1111 ", "1111 1111"],
        ["10.0.", "0.1"],
        ["April ", "12, 1961"],
        ["https:", "//x.org"],
    ],
)
def test_no_match_across_texts(scanner: Scanner, texts: list[str]) -> None:
    assert scanner.scan_many(texts) == [[] for _ in texts]
    assert scanner.scan("".join(texts)) != []  # the same characters in one text do match


def test_texts_may_contain_nul(scanner: Scanner) -> None:
    assert found(scanner, "a\x00123-45-6789\x00b") == [("ssn", "123-45-6789")]


def test_lone_surrogates(scanner: Scanner) -> None:
    texts = ["bad \ud800 SSN 123-45-6789", "fine 555-234-5678"]
    assert [[m.detector.name for m in ms] for ms in scanner.scan_many(texts)] == [
        ["ssn"],
        ["phone"],
    ]


def test_redact_many(scanner: Scanner) -> None:
    texts = ["nothing here", "Zoë's SSN 123-45-6789 ✓, call (555) 234-5678", ""]
    out = scanner.redact_many(texts, label)
    assert out[0] is texts[0] and out[2] is texts[2]
    assert out[1] == "Zoë's SSN [REDACTED:SSN] ✓, call [REDACTED:PHONE]"


def test_scan_many_equals_scan_each(scanner: Scanner) -> None:
    texts = realistic_corpus(10_000)
    batch = scanner.scan_many(texts)
    assert batch == [scanner.scan(t) for t in texts]
    assert sum(map(len, batch)) > 3000


def test_engines_agree_on_realistic_corpus() -> None:
    from phimask.detect import available_engines

    texts = realistic_corpus(5_000, seed=11)
    results = [builtin_scanner(e).scan_many(texts) for e in available_engines()]
    assert len(results) == 2 and results[0] == results[1]


def test_threads(scanner: Scanner) -> None:
    texts = realistic_corpus(2_000, seed=5)
    expected = scanner.scan_many(texts)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(scanner.scan_many, [texts] * 12))
    assert all(r == expected for r in results)


def test_overlaps_longest_then_earliest_then_detector_order(engine: str) -> None:
    detectors = [
        custom_detector("short", r"AB\d{2}"),
        custom_detector("long", r"AB\d{4}"),
        custom_detector("late", r"\d{4}X"),
        custom_detector("twin", r"AB\d{2}"),
    ]
    scanner = Scanner.build(detectors, engine)
    assert found(scanner, "AB1234X AB12") == [("long", "AB1234"), ("short", "AB12")]
    assert found(scanner, "Z1234X") == [("late", "1234X")]


def test_shorter_end_is_tried_when_longest_fails(scanner: Scanner) -> None:
    assert found(scanner, "at 2021-01-15 25:00 ok") == [("date", "2021-01-15")]
    assert found(scanner, "+44 20 7946 0958 12345678") == [("phone", "+44 20 7946 0958")]


def test_rejected_match_does_not_hide_an_overlapping_one(engine: str) -> None:
    # "xab1" is rejected; "ab1" starts inside it and ends where it ended, so Hyperscan
    # reports only "xab1"'s start for that end: the scan must not jump to "cd2".
    not_x = Detector("not_x", "N", r"[a-z]{1,5}\d", validator=lambda t: t[0] != "x")
    scanner = Scanner.build([not_x], engine)
    assert found(scanner, "xab1 cd2") == [("not_x", "ab1"), ("not_x", "cd2")]


def test_boundaries(engine: str) -> None:
    detectors = [
        Detector("d", "D", r"\d{3}", boundary="digit"),
        Detector("w", "W", r"[a-z]{3}", boundary="word"),
        Detector("a", "A", r"Q[0-9]", boundary="alnum"),
    ]
    scanner = Scanner.build(detectors, engine)
    assert found(scanner, "1234 x123y _abc_ abc- zQ1 Q2_") == [
        ("d", "123"),
        ("w", "abc"),
        ("a", "Q2"),
    ]


def test_no_detectors(engine: str) -> None:
    scanner = Scanner.build([], engine)
    assert scanner.scan_many(["123-45-6789"]) == [[]]


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Scanner.build(builtin_detectors()).engine == "hyperscan"
    with pytest.raises(ValueError, match="unknown scan engine"):
        Scanner.build(builtin_detectors(), "pcre")
    monkeypatch.setattr(scanner_module, "hyperscan_module", lambda: None)
    assert scanner_module.available_engines() == ["re"]
    assert Scanner.build(builtin_detectors()).engine == "re"
    with pytest.raises(PatternError, match="hyperscan engine is not available"):
        Scanner.build(builtin_detectors(), "hyperscan")


def test_duplicate_names() -> None:
    with pytest.raises(PatternError, match="'ssn' is listed twice"):
        Scanner.build(builtin_detectors() + builtin_detectors(enabled=["ssn"]))


def test_pattern_errors_name_the_detector(engine: str) -> None:
    with pytest.raises(PatternError, match="detector 'broken'"):
        Scanner.build([Detector("broken", "B", r"(unclosed")], engine)


def test_hyperscan_compile_error_names_the_detector() -> None:
    ok = Detector("fine", "F", r"\d{3}")
    possessive = Detector("possessive", "P", r"a++b")  # re accepts it, Hyperscan does not
    with pytest.raises(PatternError, match=r"detector 'possessive'.*hyperscan"):
        Scanner.build([ok, possessive], "hyperscan")
    assert Scanner.build([ok, possessive], "re").scan("aaab") != []


def test_pattern_too_large_for_start_tracking_still_scans(engine: str) -> None:
    email = r"[a-z0-9._%+-]{1,64}@(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,63}"
    scanner = Scanner.build([custom_detector("mail", email)], engine)
    text = "x a.b@c.example.com y@z.org q@r"
    assert found(scanner, text) == [("mail", "a.b@c.example.com"), ("mail", "y@z.org")]
