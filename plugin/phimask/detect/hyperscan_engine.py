"""Hyperscan glue: one database for all detectors, one scan for a whole batch.

The batch is joined with "\\x00" (no built-in pattern matches it), with one more after
the last text, encoded to UTF-8 once and scanned once; patterns compile in UTF-8 mode
without UCP, so classes stay ASCII and `.`/negated classes count code points, exactly
like `re` with re.ASCII, and with HS_FLAG_SOM_LEFTMOST (dropped per pattern when it
makes one too large to compile). A match that spans the separator (only a policy
pattern can) just costs a useless search: `re` on the one text decides every result.

A detector with a boundary is scanned with it folded in, so that Hyperscan does not
report the many matches that touch it (in hex ids, long digit runs, timestamps): a
character outside the boundary class must come before the match (the separator does,
for every text but the first, which starts the buffer: `^`) and, when every end the
search can accept must be followed by one, after it (the separator after each text
counts). That holds for a fixed-width pattern (no shorter end to retry) and for one
that looks at nothing beyond what it matches (a shorter end is confirmed with
`fullmatch`, which sees no further, and checked against the boundary). The reported
end then lies one character past the match end, which `scan` takes back, and the
reported start one character before the match start, which `rules.Rule.find_hinted`
accepts: it needs a hinted start at or before the start of each match it can accept.
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
    """The detector's pattern with its boundary folded in, and how many characters the
    reported end lies past the match end; None when there is nothing to fold."""
    if detector.boundary == "none" or detector.prefilter is not None:
        return None
    outside = _OUTSIDE[detector.boundary]
    shortest, longest = widths(detector.pattern)
    if shortest == longest or not looks_around(detector.pattern):
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
            for j, d in enumerate(detectors):  # a folded boundary never costs a detector
                ci = d.case_insensitive
                if bounded[j] and hyperscan_problem(patterns[j], case_insensitive=ci):
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
        """(text index, detector index, hints) for the pairs that may match; a text's
        pairs come one after another.

        Hints are (start, end) str offsets in the text, sorted by end; see
        `rules.Rule.find_hinted` for what they promise. A text that is not valid UTF-8
        (a lone surrogate) is not scanned: all its detectors get None.
        """
        data, ends, unscanned = _encode(texts)
        events: list[tuple[int, int, int]] = []
        record = events.append

        def on_match(rule: int, start: int, end: int, _flags: int, _ctx: object) -> None:
            record((rule, start, end))

        self._db.scan(data, match_event_handler=on_match, scratch=self._scratch())
        rules, som, trail = self._rules, self._som, self._trail
        if events:
            skip = frozenset(unscanned)
            # bases[i] is where text i starts. A match belongs to the text whose own
            # bytes or separator hold its last byte: the first with bases[i + 1] >= end.
            bases = [0, *map(add, ends, repeat(1))]
            rule_ids, starts, stops = zip(*events, strict=True)
            texts_of = map(bisect_left, repeat(bases[1:]), stops)  # stays in C
            keys = map(add, map(mul, texts_of, repeat(rules)), rule_ids)
            for key, group in groupby(sorted(zip(keys, stops, starts, strict=True)), _KEY):
                i, rule = divmod(key, rules)  # by text, then detector, then end
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


def _char_offsets(
    group: Iterator[tuple[int, int, int]], base: int, data: bytes, trail: int
) -> Hints:
    """(key, end, start) byte offsets in the joined buffer as (start, end) str offsets
    in the text starting at `base`, each end taken back `trail` characters.

    A start before the text (a pattern that spans the separator, or a folded boundary
    on it) comes out negative, which the search takes as a start before any it could
    accept.
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
    offset just past text i, where its separator is. Texts that cannot be encoded (lone
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
