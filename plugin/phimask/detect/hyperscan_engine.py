"""Hyperscan glue: one database for all detectors, one scan for a whole batch.

The batch is joined with "\\x00" (no built-in pattern matches it), with one more after
the last text, encoded to UTF-8 once and scanned once; patterns compile in UTF-8 mode
without UCP, so classes stay ASCII and `.`/negated classes count code points, exactly
like `re` with re.ASCII, and with HS_FLAG_SOM_LEFTMOST (dropped per pattern when it
makes one too large to compile). A match that spans the separator (only a policy
pattern can) just costs a useless search: `re` on the one text decides every result.

A detector with a boundary is scanned with the boundary folded in, so Hyperscan does
not report the many matches that touch it (hex ids, long digit runs): a character
outside the boundary class (or the start of the buffer; every text but the first
follows a separator) before the match, and one after it (the separator after the
last character of a text counts) when every acceptable end must be followed by one:
always for a fixed-width pattern (nothing shorter to retry), and for one that only
looks at what it matches (a retried shorter end is checked with `fullmatch`, which
cannot see past it). The reported end is then one character past the match end, and
the reported start one character before the match start (or at it, at the buffer
start): rules.Rule.find only needs a hinted end at every acceptable end and a hinted
start at or before it.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from functools import cache
from itertools import accumulate, groupby, repeat
from operator import add, itemgetter, mul
from types import ModuleType
from typing import Any

from phimask.detect.detectors import Detector
from phimask.detect.patterns import looks_around, widths
from phimask.detect.rules import Hints
from phimask.detect.safety import PatternError

SEPARATOR = "\x00"
_KEY = itemgetter(0)

# Characters that may not touch a match, as a Hyperscan class that matches any other
# code point; case-sensitive even in a caseless pattern, where Hyperscan would fold the
# Kelvin sign and the long s into the letters. "dotted" rules out at least "alnum".
_OUTSIDE = {
    "digit": "(?-i:[^0-9])",
    "alnum": "(?-i:[^0-9A-Za-z])",
    "word": "(?-i:[^0-9A-Za-z_])",
    "dotted": "(?-i:[^0-9A-Za-z])",
}


def _load() -> ModuleType | None:
    try:
        import hyperscan
    except ImportError:
        return None
    return hyperscan


@cache
def hyperscan_module() -> ModuleType | None:
    """The hyperscan module if it imports and compiles on this CPU."""
    hs = _load()
    if hs is None:
        return None
    try:
        hs.Database().compile(expressions=[b"a"], ids=[0], elements=1, flags=[hs.HS_FLAG_UTF8])
    except Exception:  # e.g. ArchitectureError: the wheel imports but cannot run here
        return None
    return hs


def _flags(hs: ModuleType, case_insensitive: bool, som: bool) -> int:
    flags = hs.HS_FLAG_UTF8 | (hs.HS_FLAG_CASELESS if case_insensitive else 0)
    return int(flags | (hs.HS_FLAG_SOM_LEFTMOST if som else 0))


def hyperscan_problem(pattern: str, *, case_insensitive: bool) -> str | None:
    """Why Hyperscan cannot compile `pattern` (None when it can, or is not installed)."""
    hs = hyperscan_module()
    if hs is None:
        return None
    try:
        _compile(hs, [pattern], [_flags(hs, case_insensitive, som=False)])
    except hs.error as exc:
        return f"does not compile with hyperscan: {exc}"
    return None


def _compile(hs: ModuleType, patterns: Sequence[str], flags: Sequence[int]) -> Any:
    db = hs.Database()
    db.compile(
        expressions=[p.encode() for p in patterns],
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=list(flags),
    )
    return db


def _som_ok(hs: ModuleType, pattern: str, case_insensitive: bool) -> bool:
    """Start-of-match tracking makes some patterns too large to compile."""
    try:
        _compile(hs, [pattern], [_flags(hs, case_insensitive, som=True)])
    except hs.error:
        return False
    return True


def _bounded(detector: Detector) -> tuple[str, int] | None:
    """The pattern with the detector's boundary folded in, and how many characters
    the reported end lies past the match end; None when there is no boundary to fold."""
    if detector.boundary == "none" or detector.prefilter is not None:
        return None
    outside = _OUTSIDE[detector.boundary]
    low, high = widths(detector.pattern)
    if low == high or not looks_around(detector.pattern):
        return f"(?:^|{outside})(?:{detector.pattern}){outside}", 1
    return f"(?:^|{outside})(?:{detector.pattern})", 0


class HyperscanBatch:
    """A compiled database plus a scratch per thread (a scratch serves one scan at a time)."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        hs = hyperscan_module()
        if hs is None:
            raise PatternError("the hyperscan engine is not available on this machine")
        self._hs = hs
        plain = [d.prefilter or d.pattern for d in detectors]
        bounded = [_bounded(d) for d in detectors]
        patterns = [b[0] if b else p for b, p in zip(bounded, plain, strict=True)]
        self._trail = [b[1] if b else 0 for b in bounded]
        self._som = [True] * len(detectors)
        try:
            self._db = _compile(hs, patterns, self._flags(detectors))
        except hs.error:
            for j, d in enumerate(detectors):  # a folded boundary must not cost a pattern
                if bounded[j] and hyperscan_problem(patterns[j], case_insensitive=d.case_insensitive):
                    patterns[j], self._trail[j] = plain[j], 0
            self._som = [
                _som_ok(hs, p, d.case_insensitive) for p, d in zip(patterns, detectors, strict=True)
            ]
            try:
                self._db = _compile(hs, patterns, self._flags(detectors))
            except hs.error:
                for d, p in zip(detectors, plain, strict=True):  # name the culprit
                    problem = hyperscan_problem(p, case_insensitive=d.case_insensitive)
                    if problem is not None:
                        raise PatternError(f"detector {d.name!r}: pattern {problem}") from None
                raise PatternError("hyperscan cannot compile the detector set") from None
        self._rules = len(detectors)
        self._local = threading.local()

    def scan(self, texts: Sequence[str]) -> Iterator[tuple[int, int, Hints | None]]:
        """(text index, detector index, hints) for the pairs that may match, each text's
        pairs together.

        Hints are (start, end) str offsets in the text, sorted by end: every acceptable
        match ends at a hinted end whose start is at or before its own. A text that is
        not valid UTF-8 (a lone surrogate) is not scanned: all its detectors get None.
        """
        data, ends, unscanned = _encode(texts)
        events: list[tuple[int, int, int]] = []
        record = events.append

        def on_match(rule: int, start: int, end: int, _flags: int, _ctx: object) -> None:
            record((rule, start, end))

        if data:
            self._db.scan(data, match_event_handler=on_match, scratch=self._scratch())
        rules, som, trail = self._rules, self._som, self._trail
        if events:
            skip = frozenset(unscanned)
            # A match belongs to the first text whose separator is at or after its last
            # byte (a folded boundary may end on the separator); bases[i + 1] is just
            # past text i's separator.
            bases = [0, *map(add, ends, repeat(1))]
            nexts = bases[1:]
            rule_ids, starts, stops = zip(*events, strict=True)
            texts_of = map(bisect_left, repeat(nexts), stops)
            keys = map(add, map(mul, texts_of, repeat(rules)), rule_ids)
            packed = sorted(zip(keys, stops, starts))  # by text, rule, end
            for key, group in groupby(packed, _KEY):
                i, rule = divmod(key, rules)
                if skip and i in skip:
                    continue
                base = bases[i]
                if len(texts[i]) == ends[i] - base:  # ASCII: bytes are characters
                    cut = base + trail[rule]
                    hints = [(start - base, stop - cut) for _, stop, start in group]
                else:
                    hints = _char_offsets(group, base, data, trail[rule])
                if not som[rule]:  # Hyperscan reported no starts
                    hints = [(-1, stop) for _, stop in hints]
                yield i, rule, hints
        for i in unscanned:
            for rule in range(rules):
                yield i, rule, None

    def _flags(self, detectors: Sequence[Detector]) -> list[int]:
        return [
            _flags(self._hs, d.case_insensitive, som)
            for d, som in zip(detectors, self._som, strict=True)
        ]

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        return scratch


def _char_offsets(group: Iterator[tuple[int, int, int]], base: int, data: bytes, trail: int) -> Hints:
    """(key, stop, start) byte offsets in the joined buffer as (start, end) str offsets
    in the text starting at `base`, the end moved back `trail` characters.

    A start before the text (a pattern that spans the separator) comes out negative,
    which the search treats as a start before any it could take.
    """

    known: dict[int, int] = {}

    def chars(offset: int) -> int:
        if offset < base:
            return -1
        n = known.get(offset)
        if n is None:
            n = known[offset] = len(data[base:offset].decode())
        return n

    return [(chars(start), chars(stop) - trail) for _, stop, start in group]


def _encode(texts: Sequence[str]) -> tuple[bytes, list[int], list[int]]:
    """The batch as UTF-8, each text followed by the separator; `ends[i]` is the byte
    offset just past text i (its separator's). Texts that cannot be encoded (lone
    surrogates) are left empty and listed."""
    joined = SEPARATOR.join(texts) + SEPARATOR
    unscanned: list[int] = []
    if joined.isascii():
        data = joined.encode("ascii")
        lengths = list(map(len, texts))
    else:
        try:
            encoded = list(map(str.encode, texts))
        except UnicodeEncodeError:
            encoded = []
            for i, text in enumerate(texts):
                try:
                    encoded.append(text.encode())
                except UnicodeEncodeError:
                    encoded.append(b"")
                    unscanned.append(i)
        encoded.append(b"")
        data = SEPARATOR.encode().join(encoded)
        lengths = list(map(len, encoded[:-1]))
    ends = list(accumulate(map(add, lengths, repeat(1)), initial=-1))[1:]  # in C, not per text
    return data, ends, unscanned
