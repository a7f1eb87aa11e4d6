"""The scanner computes exactly the documented search (rules.py), on both engines.

`reference` is that procedure written plainly: `re.search` from each position, the
boundary checks and the shorter-end retry in Python, no hints. The scanner folds
boundaries into the patterns (lookbehind/lookahead for `re`, extra characters for
Hyperscan) and lets Hyperscan skip ahead; none of that may change a result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phimask.detect import (
    Detector,
    Scanner,
    available_engines,
    builtin_detectors,
    custom_detector,
)
from phimask.detect.hyperscan_engine import HyperscanBatch
from phimask.detect.patterns import looks_around
from tests.detect.conftest import found

_ALNUM = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LETTERS = _ALNUM - set("0123456789")
_CLASSES = {"digit": set("0123456789"), "alnum": _ALNUM, "word": _ALNUM | {"_"}}


def _touches_left(boundary: str, text: str, start: int) -> bool:
    if boundary == "none" or start == 0:
        return False
    before = text[start - 1]
    if boundary != "dotted":
        return before in _CLASSES[boundary]
    beyond = text[start - 2] if start > 1 else ""
    return (
        before in _ALNUM
        or (before == "." and beyond in _ALNUM)
        or (before == "/" and beyond in _LETTERS)
    )


def _touches_right(boundary: str, text: str, end: int) -> bool:
    if boundary == "none" or end >= len(text):
        return False
    after = text[end]
    if boundary != "dotted":
        return after in _CLASSES[boundary]
    beyond = text[end + 1] if end + 1 < len(text) else ""
    return after in _ALNUM or (after == "." and beyond in _ALNUM)


def reference(detectors: list[Detector], text: str) -> list[tuple[int, int, str]]:
    candidates: list[tuple[int, int, int, int]] = []
    for index, d in enumerate(detectors):
        rx = re.compile(d.pattern, re.ASCII | (re.IGNORECASE if d.case_insensitive else 0))
        pos = 0
        while (m := rx.search(text, pos)) is not None:
            start, end = m.span()
            accepted = -1
            if not _touches_left(d.boundary, text, start):
                for e in (end, *range(end - 1, max(start, end - 64) - 1, -1)):
                    if e != end and rx.fullmatch(text, start, e) is None:
                        continue
                    if _touches_right(d.boundary, text, e):
                        continue
                    if d.validator is not None and not d.validator(text[start:e]):
                        continue
                    if d.context is not None and not d.context(text, start, e):
                        continue
                    accepted = e
                    break
            if accepted > start:
                candidates.append((start, start - accepted, index, accepted))
                pos = accepted
            else:
                pos = start + 1
    out: list[tuple[int, int, str]] = []
    taken = 0
    for start, _, index, end in sorted(candidates):
        if start >= taken:
            out.append((start, end, detectors[index].name))
            taken = end
    return out


def _even(text: str) -> bool:
    return sum(map(ord, text)) % 2 == 0


def _not_x(text: str) -> bool:
    return text[0] != "x"


def _rich(make: Callable[..., Detector] = Detector) -> list[Detector]:
    """Every boundary, fixed and variable widths, validators that reject, `\\b`, a
    global flag, a pattern that can match the separator, a prefilter with a boundary."""
    return [
        *builtin_detectors(),
        custom_detector("kelvin", r"kelvin\d", case_insensitive=True),
        make("not_x", "N", r"[a-z]{1,5}\d", _not_x, "digit"),
        make("bword", "B", r"\bab\d{2,4}\b", None, "alnum"),
        make("bfix", "BF", r"\b[a-z]\d{3}", _even, "word"),
        make("bshort", "BS", r"\d{2}[a-z]{1,3}\b", lambda t: len(t) != 5, "digit"),
        make("dots", "D", r"\d{1,3}(?:\.\d{1,3}){1,3}", _even, "dotted"),
        make("kfix", "K", r"k\d{2}", None, "alnum", True),
        make("kvar", "KV", r"s[a-z]{1,3}", _even, "alnum", True),
        make("gflag", "G", r"(?i)mrn\d{3,6}", None, "alnum"),
        make("hashb", "H", r"#[^#]{2,6}#", _even, "alnum"),
        make("pref", "P", r"Q\d{2,6}", _not_x, "alnum", prefilter=r"Q\d"),
        make("fixd", "FD", r"\d{4}", _even, "digit"),
        make("fixw", "FW", r"[0-9a-f]{6}", _even, "word", True),
        make("alt", "ALT", r"\d{2}|\d{5}|\d{2}-\d{2}", _even, "alnum"),
    ]


@cache
def rich_scanners() -> tuple[list[Detector], list[Scanner]]:
    detectors = _rich()
    return detectors, [Scanner.build(detectors, engine) for engine in available_engines()]


ALPHABET = (
    "0123456789" * 3
    + " -./:()+@#_,\x00\n"
    + "aAbBeEfFxXmMrRnNtTwWhHpPsSkKqQ"
    + "éΩ✓İ\u212a\u017f😀"
)
FRAGMENTS = [
    "123-45-6789",
    "555-234-5678",
    "2001:db8::1",
    "10.0.0.1",
    "1.2.3.4.5",
    "Chrome/1.2.3.4",
    "April 12, 1961",
    "2025-03-03T08:00:09.658Z",
    "john.doe@example.com",
    "http://x.org/a",
    "MRN: 1234567",
    "mrn12345",
    "1HGCM82633A004352",
    "4dc696d98842c61c46e42744e2ade707",
    "kelvin7",
    "\u212aelvin7",
    "k12",
    "\u212a12",
    "sab",
    "\u017fab",
    "#ab#",
    "ab123",
    "12abc",
    "x1234",
    "Q12345",
    "12-34",
    "Dr. Ann Lee",
    "John Smith",
    "Lee, Ann Q.",
    "pt Zoë Smith",
    "Mary-Jo O'Neil",
    " Will ",
]
piece = st.one_of(st.text(alphabet=ALPHABET, max_size=12), st.sampled_from(FRAGMENTS))
texts = st.lists(st.lists(piece, max_size=6).map("".join), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_scanner_computes_the_reference_search(batch: list[str]) -> None:
    detectors, scanners = rich_scanners()
    expected = [reference(detectors, text) for text in batch]
    for scanner in scanners:
        got = [[(m.start, m.end, m.detector.name) for m in ms] for ms in scanner.scan_many(batch)]
        assert got == expected, scanner.engine


@pytest.mark.parametrize(
    "text",
    [
        "k12\u212a k13\u017f",  # Hyperscan folds these into k and s when caseless
        "\u212ak14 \u017fk15",
        "k16",  # the whole text: nothing before, the separator after
        "😀k17😀 ék18é",  # multibyte characters around
        "12abc-",  # "12ab" only passes `\b` because fullmatch cannot see the "c"
        "4dc696d98842c61c46e42744e2ade707 1HGCM82633A004352",
        "ref 1123-45-67890 / 123-45-6789",
        "MRN-123456789012 MRN-12345678",
    ],
)
def test_boundary_edge_cases(text: str) -> None:
    detectors, scanners = rich_scanners()
    expected = reference(detectors, text)
    for scanner in scanners:
        assert [(m.start, m.end, m.detector.name) for m in scanner.scan(text)] == expected
    # Last in a batch (no separator of its own but the final one), after a lone
    # surrogate (not scanned by Hyperscan) and after non-ASCII text.
    batch = ["\ud800", "Zoë", text]
    for scanner in scanners:
        got = scanner.scan_many(batch)[2]
        assert [(m.start, m.end, m.detector.name) for m in got] == expected


def test_kelvin_sign_does_not_touch(engine: str, scanner: Scanner) -> None:
    caseless = Detector("k", "K", r"k\d{2}", None, "alnum", case_insensitive=True)
    assert found(Scanner.build([caseless], engine), "k12\u212a") == [("k", "k12")]
    assert found(scanner, "VIN 1HGCM82633A004352\u212a") == [("vin", "1HGCM82633A004352")]


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="no hyperscan")
def test_hyperscan_skips_matches_that_touch_a_boundary() -> None:
    batch = HyperscanBatch(builtin_detectors())
    names = [d.name for d in builtin_detectors()]
    texts = [
        "4dc696d98842c61c46e42744e2ade707",  # 16 VIN-shaped windows, all touching
        "MRN-123456789012",  # too many digits for an MRN
        "ref 1123-45-67890",
    ]
    assert [(i, names[r]) for i, r, _ in batch.scan(texts)] == []
    pairs = {(i, names[r]): hints for i, r, hints in batch.scan(["x 2025-03-03T08:00:09.658Z"])}
    assert list(pairs) == [(0, "date")]
    # Only ends a match may be accepted at; starts at or before the match start.
    assert pairs[0, "date"] == [(1, 18), (1, 21), (1, 26)]


def test_looks_around() -> None:
    assert not looks_around(r"(?:[a-z]{3}|\d)+x?")
    assert not looks_around(r"(?>ab)c")
    for pattern in (r"\bab", r"a(?=b)", r"(?<=a)b", r"(?:a|\B)c", r"(a)\1", r"a\Z", r"(unclosed"):
        assert looks_around(pattern), pattern
    assert not any(looks_around(d.pattern) for d in builtin_detectors())
