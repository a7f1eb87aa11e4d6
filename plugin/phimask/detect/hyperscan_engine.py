"""Hyperscan glue: one database for all detectors, one scan for a whole batch.

The batch is joined with "\\x00" (no built-in pattern matches it), encoded to UTF-8 once
and scanned once; patterns compile in UTF-8 mode without UCP, so classes stay ASCII
and `.`/negated classes count code points, exactly like `re` with re.ASCII, and with
HS_FLAG_SOM_LEFTMOST (dropped per pattern when it makes one too large to compile).
A match that spans the separator (only a policy pattern can) just costs a useless
search: `re` on the one text decides every result.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence
from functools import cache, partial
from itertools import accumulate, repeat
from operator import add, itemgetter, mul
from types import ModuleType
from typing import Any

from phimask.detect.detectors import Detector
from phimask.detect.rules import Hints
from phimask.detect.safety import PatternError

SEPARATOR = "\x00"
_END = itemgetter(1)


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


class HyperscanBatch:
    """A compiled database plus a scratch per thread (a scratch serves one scan at a time)."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        hs = hyperscan_module()
        if hs is None:
            raise PatternError("the hyperscan engine is not available on this machine")
        self._hs = hs
        patterns = [d.prefilter or d.pattern for d in detectors]
        self._som = [True] * len(detectors)
        try:
            self._db = _compile(hs, patterns, self._flags(detectors))
        except hs.error:
            self._som = [
                _som_ok(hs, p, d.case_insensitive) for p, d in zip(patterns, detectors, strict=True)
            ]
            try:
                self._db = _compile(hs, patterns, self._flags(detectors))
            except hs.error:
                for d, p in zip(detectors, patterns, strict=True):  # name the culprit
                    problem = hyperscan_problem(p, case_insensitive=d.case_insensitive)
                    if problem is not None:
                        raise PatternError(f"detector {d.name!r}: pattern {problem}") from None
                raise PatternError("hyperscan cannot compile the detector set") from None
        self._rules = len(detectors)
        self._local = threading.local()

    def scan(self, texts: Sequence[str]) -> dict[int, dict[int, Hints | None]]:
        """{text index: {detector index: hints}} for the pairs that may match.

        Hints are (start, end) str offsets in the text, sorted by end. A text that is not
        valid UTF-8 (a lone surrogate) is not scanned: all its detectors get None.
        """
        data, ends, unscanned = _encode(texts)
        events: list[tuple[int, int, int]] = []
        record = events.append

        def on_match(rule: int, start: int, end: int, _flags: int, _ctx: object) -> None:
            record((rule, start, end))

        if data:
            self._db.scan(data, match_event_handler=on_match, scratch=self._scratch())
        rules, som = self._rules, self._som
        grouped: dict[int, list[tuple[int, int]]] = {}
        if events:
            rule_ids, starts, stops = zip(*events, strict=True)
            texts_of = map(partial(bisect_left, ends), stops)  # stays in C
            keys = map(add, map(mul, texts_of, repeat(rules)), rule_ids)
            for key, start, stop in zip(keys, starts, stops, strict=True):
                pairs = grouped.get(key)
                if pairs is None:
                    grouped[key] = [(start, stop)]
                else:
                    pairs.append((start, stop))
        out: dict[int, dict[int, Hints | None]] = {}
        for key in sorted(grouped):
            i, rule = divmod(key, rules)
            base = ends[i - 1] + 1 if i else 0
            pairs = grouped[key]
            if len(texts[i]) == ends[i] - base:  # ASCII: bytes are characters
                hints = [(start - base, stop - base) for start, stop in pairs]
            else:
                hints = _char_offsets(pairs, base, data)
            if not som[rule]:  # Hyperscan reported no starts
                hints = [(-1, stop) for _, stop in hints]
            if len(hints) > 1:
                hints.sort(key=_END)
            per_rule = out.get(i)
            if per_rule is None:
                per_rule = out[i] = {}
            per_rule[rule] = hints
        for i in unscanned:
            out[i] = dict.fromkeys(range(rules))
        return out

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


def _char_offsets(pairs: list[tuple[int, int]], base: int, data: bytes) -> Hints:
    """Byte offsets in the joined buffer as str offsets in the text starting at `base`.

    A start before the text (a pattern that spans the separator) comes out negative,
    which the search treats as straddling, i.e. does not trust.
    """

    known: dict[int, int] = {}

    def chars(offset: int) -> int:
        if offset < base:
            return -1
        n = known.get(offset)
        if n is None:
            n = known[offset] = len(data[base:offset].decode())
        return n

    return [(chars(start), chars(stop)) for start, stop in pairs]


def _plus_one(n: int) -> int:
    return n + 1


def _encode(texts: Sequence[str]) -> tuple[bytes, list[int], list[int]]:
    """The batch as UTF-8 joined by the separator; `ends[i]` is the byte offset just past
    text i. Texts that cannot be encoded (lone surrogates) are left empty and listed."""
    joined = SEPARATOR.join(texts)
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
        data = SEPARATOR.encode().join(encoded)
        lengths = list(map(len, encoded))
    ends = list(accumulate(map(_plus_one, lengths), initial=-1))[1:]  # in C, not per text
    return data, ends, unscanned
