"""One detector compiled for `re`: the per-text search procedure both engines share.

For each detector, search left to right. A match that touches a forbidden boundary
character on the left is dropped; one that touches on the right or fails the validator
is retried with shorter ends (up to `MAX_RETRY`; the longest acceptable end wins). An
accepted match resumes the search at its end, a dropped one a character after its start.

Hyperscan hints only make that search cheaper, never change its result: each hint is a
(start, end) pair where `start` is the leftmost start of a match ending at `end`
(HS_FLAG_SOM_LEFTMOST), and every `re` match ends at a hinted end. So, from `pos`:
no hinted end after `pos` means no match; when no hinted pair straddles `pos`, the next
match starts at the smallest hinted start >= `pos` (`re.match` there); otherwise the
search may begin at `first hinted end after pos - longest match`. With a prefilter
(Hyperscan scans a looser pattern) only the ends are used.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from phimask.detect.detectors import Detector
from phimask.detect.patterns import required_chars, widths
from phimask.detect.safety import PatternError

MAX_RETRY = 64

# (start, -length, detector index, end): sorts by start, longest first, detector order.
Candidate = tuple[int, int, int, int]
Hints = list[tuple[int, int]]

_DIGITS = frozenset("0123456789")
_ALNUM = _DIGITS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LETTERS = _ALNUM - _DIGITS
_CLASSES: dict[str, frozenset[str]] = {"digit": _DIGITS, "alnum": _ALNUM, "word": _ALNUM | {"_"}}


class Rule:
    __slots__ = (
        "detector",
        "exact",
        "fullmatch",
        "index",
        "left",
        "match",
        "min_width",
        "required",
        "right",
        "search",
        "validator",
        "width",
    )

    def __init__(self, detector: Detector, index: int) -> None:
        flags = re.ASCII | (re.IGNORECASE if detector.case_insensitive else 0)
        try:
            rx = re.compile(detector.pattern, flags)
        except re.error as exc:
            raise PatternError(f"detector {detector.name!r}: invalid pattern: {exc}") from None
        self.detector = detector
        self.index = index
        self.search = rx.search
        self.match = rx.match
        self.fullmatch = rx.fullmatch
        self.validator = detector.validator
        self.min_width, self.width = widths(detector.pattern)
        # A text without any of these characters cannot match (None: unknown).
        self.required = required_chars(detector.pattern, case_insensitive=detector.case_insensitive)
        self.exact = detector.prefilter is None  # hinted starts are real match starts
        self.left: Callable[[str, int], bool] | None = None
        self.right: Callable[[str, int], bool] | None = None
        if detector.boundary == "dotted":
            self.left, self.right = _left_dotted, _right_dotted
        elif detector.boundary != "none":
            chars = _CLASSES[detector.boundary]
            self.left, self.right = _touch_left(chars), _touch_right(chars)

    def find(self, text: str, out: list[Candidate], hints: Hints | None = None) -> None:
        """Append a Candidate for each accepted match; `hints` sorted by end."""
        search, left, width = self.search, self.left, self.width
        trust_starts = self.exact
        pos = 0
        while True:
            if hints is None:
                m = search(text, pos)
            else:
                # The first hinted end after pos; whether a hinted match straddles pos;
                # else the first hinted start at or after pos.
                first_end = -1
                first_start = len(text)
                for start, end in hints:
                    if end > pos:
                        if first_end < 0:
                            first_end = end
                        if start < pos:
                            trust_starts = False
                        elif start < first_start:
                            first_start = start
                if first_end < 0:
                    return
                m = self.match(text, first_start) if trust_starts else None
                if m is None:
                    begin = pos if width is None else max(pos, first_end - width)
                    m = search(text, begin)
                trust_starts = self.exact
            if m is None:
                return
            start, end = m.span()
            if left is None or not left(text, start):
                end = self._accept(text, start, end)
                if end > start:
                    out.append((start, start - end, self.index, end))
                    pos = end
                    continue
            pos = start + 1

    def _accept(self, text: str, start: int, end: int) -> int:
        """The longest acceptable end at or before `end`, or -1."""
        right, validator = self.right, self.validator
        if (right is None or not right(text, end)) and (
            validator is None or validator(text[start:end])
        ):
            return end
        if right is None and validator is None:
            return -1
        fullmatch = self.fullmatch
        lowest = max(start + self.min_width, end - MAX_RETRY)
        for shorter in range(end - 1, lowest - 1, -1):
            if (
                fullmatch(text, start, shorter) is not None
                and (right is None or not right(text, shorter))
                and (validator is None or validator(text[start:shorter]))
            ):
                return shorter
        return -1


def _touch_left(chars: frozenset[str]) -> Callable[[str, int], bool]:
    def touches(text: str, start: int) -> bool:
        return start > 0 and text[start - 1] in chars

    return touches


def _touch_right(chars: frozenset[str]) -> Callable[[str, int], bool]:
    def touches(text: str, end: int) -> bool:
        return end < len(text) and text[end] in chars

    return touches


def _left_dotted(text: str, start: int) -> bool:
    if start == 0:
        return False
    before = text[start - 1]
    if before in _ALNUM:
        return True
    beyond = text[start - 2] if start > 1 else ""
    return (before == "." and beyond in _ALNUM) or (before == "/" and beyond in _LETTERS)


def _right_dotted(text: str, end: int) -> bool:
    if end >= len(text):
        return False
    after = text[end]
    beyond = text[end + 1] if end + 1 < len(text) else ""
    return after in _ALNUM or (after == "." and beyond in _ALNUM)
