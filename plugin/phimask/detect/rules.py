"""One detector compiled for `re`: the per-text search procedure both engines share.

For each detector, search left to right. A match that touches a forbidden boundary
character on the left is dropped; one that touches on the right or fails the validator
is retried with shorter ends (up to `MAX_RETRY`; the longest acceptable end wins). An
accepted match resumes the search at its end, a dropped one a character after its start.

The code computes exactly that, more cheaply:

- A dropped match only moves the search one character on, so the left boundary is
  folded into the searched pattern as a negative lookbehind, and the search lands on
  the first match whose left side is clear. (A lookbehind sees the text before the
  search position, as the boundary check does; the match found at a position does not
  depend on where the search began.)
- A fixed-width pattern has no shorter end to retry, so failing the right boundary just
  drops the match: there the right boundary is folded in too, as a negative lookahead.
- The right boundary, the `fullmatch` and the validator are pure, so a shorter end is
  checked against the (cheap) boundary first and only then confirmed with `fullmatch`.

Hyperscan hints only make the search cheaper, never change its result. A hint is a
(start, end) pair, and the hints promise that every match the search would accept has
a hinted end after its start and at most the longest match past it, and (unless the
rule has a prefilter: Hyperscan scans a looser pattern) a hint with such an end whose
start is at or before its own. So from `pos`, no hinted end after `pos` means nothing
more to accept, and the next match to accept starts at or after both `first hinted end
after pos - longest match` and the smallest start hinted with an end after `pos`. Any
match the search meets before it is dropped or rejected, as it would have been.
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

# The boundary checks below as `re` assertions (ASCII classes: unaffected by IGNORECASE
# under re.ASCII, like the frozensets above).
_NOT_AFTER = {
    "digit": r"(?<![0-9])",
    "alnum": r"(?<![0-9A-Za-z])",
    "word": r"(?<![0-9A-Za-z_])",
    "dotted": r"(?<![0-9A-Za-z])(?<![0-9A-Za-z]\.)(?<![A-Za-z]/)",
}
_NOT_BEFORE = {
    "digit": r"(?![0-9])",
    "alnum": r"(?![0-9A-Za-z])",
    "word": r"(?![0-9A-Za-z_])",
    "dotted": r"(?![0-9A-Za-z])(?!\.[0-9A-Za-z])",
}
_GLOBAL_FLAGS = re.compile(r"(?:\(\?[aiLmsux]+\))*")


class Rule:
    __slots__ = (
        "context",
        "detector",
        "exact",
        "fullmatch",
        "index",
        "left",
        "min_width",
        "required",
        "retry",
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
        self.fullmatch = rx.fullmatch
        self.validator = detector.validator
        self.context = detector.context
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
        fixed = self.width == self.min_width
        if detector.boundary != "none":
            bounded = _bounded(rx, detector.boundary, both_sides=fixed)
            if bounded is not None:
                self.search = bounded.search
                self.left = None
                if fixed:
                    self.right = None
        # Whether a failed match can be retried with a shorter end at all.
        self.retry = not fixed and (
            self.right is not None or self.validator is not None or self.context is not None
        )

    def find(self, text: str, out: list[Candidate]) -> None:
        """Append a Candidate for each accepted match."""
        search, left, right, validator = self.search, self.left, self.right, self.validator
        context = self.context
        pos = 0
        while (m := search(text, pos)) is not None:
            start, end = m.span()
            if left is None or not left(text, start):
                if (
                    (right is None or not right(text, end))
                    and (validator is None or validator(text[start:end]))
                    and (context is None or context(text, start, end))
                ):
                    out.append((start, start - end, self.index, end))
                    pos = end
                    continue
                if self.retry:
                    end = self._shorter(text, start, end)
                    if end > start:
                        out.append((start, start - end, self.index, end))
                        pos = end
                        continue
            pos = start + 1

    def find_hinted(self, text: str, out: list[Candidate], hints: Hints) -> None:
        """`find`, each search starting where the hints allow (see the module docstring):
        `hints` sorted by end."""
        search, left, right, validator = self.search, self.left, self.right, self.validator
        context = self.context
        width, exact, last = self.width, self.exact, len(hints) - 1
        if last < 0:
            return
        # The earliest start among hints k.. for every k, computed once: recomputing it
        # per match made a text with many matches quadratic (12k SSNs: 2 s, now 0.02 s).
        earliest: list[int] = []
        if exact:
            earliest = [0] * (last + 1)
            low = hints[last][0]
            for i in range(last, -1, -1):
                if hints[i][0] < low:
                    low = hints[i][0]
                earliest[i] = low
        pos = k = 0
        while True:
            first_end = hints[k][1]
            while first_end <= pos:
                if k == last:
                    return
                k += 1
                first_end = hints[k][1]
            begin = pos
            if width is not None and first_end - width > begin:
                begin = first_end - width
            if exact:
                first = earliest[k]
                if first > begin:
                    begin = first
            m = search(text, begin)
            if m is None:
                return
            start, end = m.span()
            if left is None or not left(text, start):
                if (
                    (right is None or not right(text, end))
                    and (validator is None or validator(text[start:end]))
                    and (context is None or context(text, start, end))
                ):
                    out.append((start, start - end, self.index, end))
                    pos = end
                    continue
                if self.retry:
                    end = self._shorter(text, start, end)
                    if end > start:
                        out.append((start, start - end, self.index, end))
                        pos = end
                        continue
            pos = start + 1

    def _shorter(self, text: str, start: int, end: int) -> int:
        """The longest acceptable end before `end`, or -1."""
        right, validator, fullmatch = self.right, self.validator, self.fullmatch
        context = self.context
        lowest = max(start + self.min_width, end - MAX_RETRY)
        for shorter in range(end - 1, lowest - 1, -1):
            if (
                (right is None or not right(text, shorter))
                and fullmatch(text, start, shorter) is not None
                and (validator is None or validator(text[start:shorter]))
                and (context is None or context(text, start, shorter))
            ):
                return shorter
        return -1


def _bounded(rx: re.Pattern[str], boundary: str, *, both_sides: bool) -> re.Pattern[str] | None:
    """`rx` that only matches where the left boundary is clear (and the right one, when
    `both_sides`), or None when the pattern cannot be wrapped."""
    flags = _GLOBAL_FLAGS.match(rx.pattern)
    head = flags.group() if flags else ""
    body = rx.pattern[len(head) :]
    after = _NOT_BEFORE[boundary] if both_sides else ""
    try:
        bounded = re.compile(f"{head}{_NOT_AFTER[boundary]}(?:{body}){after}", rx.flags)
    except re.error:
        return None
    if bounded.groups != rx.groups or bounded.flags != rx.flags:
        return None
    return bounded


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
