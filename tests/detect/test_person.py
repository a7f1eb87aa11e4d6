"""The person_name detector: names in prose found, ordinary log text left alone, on
every engine (the same matches on both)."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from phimask.detect import Scanner, available_engines, builtin_detectors
from phimask.detect.name_lists import DATA, name_lists, parse
from phimask.detect.name_words import AMBIGUOUS_FIRST, NOT_NAMES
from tests.detect.conftest import found


def names(scanner: Scanner, text: str) -> list[str]:
    return [t for n, t in found(scanner, text) if n == "person_name"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Patient John Smith seen by Dr. Mary Jones", ["Patient John Smith", "Dr. Mary Jones"]),
        ("eligibility lookup for Brian Cole, DOB 01/02/1960", ["Brian Cole"]),
        ("triage note: pt Kelly Ramirez (DOB 3/3/1950)", ["pt Kelly Ramirez"]),
        ("front desk updated contact for Ann Lee: phone", ["Ann Lee"]),
        ("Smith, John A. admitted", ["Smith, John A."]),
        ("Dr. J. Smith on call", ["Dr. J. Smith"]),
        ("Mrs Brown called back", ["Mrs Brown"]),
        ("Will Smith called", ["Will Smith"]),  # an ambiguous first name before a surname
        ("Mary-Jo O'Neil and Ronald McDonald", ["Mary-Jo O'Neil", "Ronald McDonald"]),
        ("John Smith's chart", ["John Smith"]),
        ("callback for José García", ["José García"]),  # accents: looked up without
        ("name: Ann Xu", ["Ann Xu"]),  # a cue: one listed word is enough
        ('patient_name="Ann Xu"', ["Ann Xu"]),
        ("seen by Nadia Okonkwo", ["Nadia Okonkwo"]),
        ("Ann Lee Clinic", ["Ann Lee"]),  # a trailing non-name word left out
        ("Internal Server Error John Smith", ["John Smith"]),
    ],
)
def test_names_found(scanner: Scanner, text: str, expected: list[str]) -> None:
    assert names(scanner, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Internal Server Error",
        "User Agent",
        "Will retry in 5 min",
        "Mark Complete",
        "Grant Type invalid",
        "Bill Pay failed",
        "May 2024",
        "Austin Energy outage",
        "Patient Portal login",
        "Cache Miss Ratio",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        "at com.example.Foo.bar(Foo.java:12)",
        "Caused by: java.lang.NullPointerException: Could Not Find",
        'File "/app/main.py", line 3, in <module>',
        "GET /api/v2/patients/123/encounters HTTP/1.1 Bad Gateway",
        "HL7 ADT^A08 acknowledged by Epic Bridge",
        "Date: Mon, 01 Jan 2024 10:00:00 GMT",
        "Social Security No. 123 does not match",
        "Medical Record Number: 1234567",
        "JavaScript Engine started",
        "John",  # one word, no cue
        "JOHN SMITH",  # capitals: not found (documented)
        "xJohn Smith",  # inside a longer word
        "seen by Xqzt Vbnm",  # a cue, but no listed word
    ],
)
def test_not_names(scanner: Scanner, text: str) -> None:
    assert names(scanner, text) == []


def test_engines_agree_on_names() -> None:
    texts = [
        "Patient John Smith seen by Dr. Mary Jones",
        "é John Smith ✓ Zoë Smith 😀 Ann Lee",
        "Smith, John Q. and Lee, Ann",
        "Internal Server Error John Smith Clinic",
        "x" * 300 + " Ann Lee",
    ]
    scanners = [Scanner.build(builtin_detectors(), e) for e in available_engines()]
    results = [s.scan_many(texts) for s in scanners]
    assert all(r == results[0] for r in results)
    assert sum(len(r) for r in results[0]) >= 8


def test_disabled_like_any_builtin(engine: str) -> None:
    names_only = Scanner.build(builtin_detectors(enabled=["person_name"]), engine)
    assert found(names_only, "Dr. Ann Lee") == [("person_name", "Dr. Ann Lee")]
    others = [n for n in (d.name for d in builtin_detectors()) if n != "person_name"]
    assert found(Scanner.build(builtin_detectors(enabled=others), engine), "Dr. Ann Lee") == []


def test_label() -> None:
    labels = {d.name: d.label for d in builtin_detectors()}
    assert labels["person_name"] == "PERSON"


def test_census_lists_are_shipped() -> None:
    lists = name_lists()
    assert len(lists.first) > 5000 and len(lists.last) > 80_000
    assert {"JOHN", "MARY", "JOSE"} <= lists.first and {"SMITH", "GARCIA", "OBRIEN"} <= lists.last
    raw = gzip.decompress(resources.files("phimask.detect").joinpath(DATA).read_bytes())
    assert b"public domain" in raw[:600] and b"Census" in raw[:600]


def test_parse_rejects_bad_data() -> None:
    assert parse("# c\n[first]\nann\n[last]\nLee\n").first == frozenset({"ANN"})
    with pytest.raises(ValueError, match="unknown section"):
        parse("[middle]\nX\n")
    with pytest.raises(ValueError, match="before the first section"):
        parse("ANN\n")


def test_word_lists_are_upper_case_and_apart() -> None:
    for words in (NOT_NAMES, AMBIGUOUS_FIRST):
        assert all(w == w.upper() for w in words)
    # an ambiguous first name is still a name before a surname: never also a non-name
    assert not AMBIGUOUS_FIRST & NOT_NAMES
