"""Both engines, and batch vs one-at-a-time, give identical results on random text."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phimask.detect import (
    Detector,
    Scanner,
    available_engines,
    builtin_detectors,
    custom_detector,
)

# \u212a (Kelvin sign) and \u017f (long s) fold to k and s in Unicode case-insensitive
# matching; \x00 is the batch separator.
ALPHABET = (
    "0123456789" * 3
    + " -./:()+@#_,\x00\n'"
    + "aAbBeEfFxXmMrRnNtTwWhHpPsSDJLo"
    + "éëΩß✓İ\u212a\u017f😀"
)
FRAGMENTS = [
    "123-45-6789",
    "123456789",
    "4111 1111 1111 1111",
    "378282246310005",
    "555-234-5678",
    "+44 20 7946 0958",
    "(555) 234-5678 x12",
    "2001:db8::1",
    "::ffff:1.2.3.4",
    "10.0.0.1",
    "1.2.3.4.5",
    "April 12, 1961",
    "12 Apr 1961",
    "1961-04-12T10:30:00Z",
    "4/12/61",
    "john.doe@example.com",
    "http://x.org/a",
    "www.a.b",
    "MRN: 1234567",
    "Member ID W123456789",
    "acct #12345678",
    "1HGCM82633A004352",
    "Kelvin7",
    "Dr. Ann Lee",
    "John Smith",
    "Lee, Ann Q.",
    "pt José García",
    "Internal Server Error",
    " Will ",
    "#ab#",
]


@cache
def scanners() -> list[Scanner]:
    detectors = [
        *builtin_detectors(),
        custom_detector("ticket", r"TKT-\d{4,8}"),
        custom_detector("kelvin", r"kelvin\d", case_insensitive=True),  # K folds in Hyperscan
        custom_detector("hashed", r"#[^#]{2,6}#"),  # can match the separator
        custom_detector("code", r"[A-Z]{2}\d+[a-z]?"),
        Detector("not_x", "N", r"[a-z]{1,5}\d", lambda t: t[0] != "x", "digit"),
    ]
    return [Scanner.build(detectors, engine) for engine in available_engines()]


piece = st.one_of(st.text(alphabet=ALPHABET, max_size=12), st.sampled_from(FRAGMENTS))
texts = st.lists(st.lists(piece, max_size=6).map("".join), max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_engines_and_batching_agree(batch: list[str]) -> None:
    hs, re_ = scanners()
    expected = re_.scan_many(batch)
    assert hs.scan_many(batch) == expected
    assert [hs.scan(t) for t in batch] == expected
    for text, matches in zip(batch, expected, strict=True):
        previous_end = 0
        for m in matches:
            assert previous_end <= m.start < m.end <= len(text)
            previous_end = m.end


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=10))
def test_engines_agree_on_raw_characters(batch: list[str]) -> None:
    hs, re_ = scanners()
    assert hs.scan_many(batch) == re_.scan_many(batch)
