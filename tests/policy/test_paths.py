import re

import pytest

from phimask.policy.paths import ANY_INDEX, ANY_KEY, Key, PathError, parse_path


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("patient.ssn", (Key("patient"), Key("ssn"))),
        ("notes[*].text", (Key("notes"), ANY_INDEX, Key("text"))),
        ("patient.*.phone", (Key("patient"), ANY_KEY, Key("phone"))),
        ('"a.b".c', (Key("a.b"), Key("c"))),
        ('x."say \\"hi\\""', (Key("x"), Key('say "hi"'))),
        ("m[*][*]", (Key("m"), ANY_INDEX, ANY_INDEX)),
        ("*", (ANY_KEY,)),
    ],
)
def test_parse(text: str, segments: tuple[object, ...]) -> None:
    assert parse_path(text) == segments


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("a..b", "empty key"),
        ("a.", "ends with"),
        ("[*].a", "cannot start"),
        ("a[0]", "only [*]"),
        ('a."b', "unterminated"),
        ("a[*]b", "expected"),
        ('""', "empty quoted"),
        ("a. b", "quoted"),
    ],
)
def test_bad_paths(text: str, problem: str) -> None:
    with pytest.raises(PathError, match=re.escape(problem)):
        parse_path(text)
