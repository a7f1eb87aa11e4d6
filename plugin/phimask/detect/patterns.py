"""What a parsed regular expression can match, from `re._parser`'s tree.

Character sets are over-approximations as (ASCII bitmask, may match non-ASCII), with
ASCII letters folded both ways, so they are safe to use for "can these overlap?" and
"can this text match at all?".
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # typeshed only knows the deprecated public aliases
    import sre_constants as C
    import sre_parse as P
else:
    import re._constants as C
    import re._parser as P

Node = tuple[Any, Any]
CharSet = tuple[int, bool]  # (ASCII bitmask, may match a non-ASCII character)
REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT)
ANYTHING: CharSet = ((1 << 128) - 1, True)


def parse(pattern: str, flags: int = 0) -> Any:
    """The parsed pattern (a `SubPattern`); raises re.error, and Warning for patterns
    Python flags as ambiguous (e.g. `[[:digit:]]`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return P.parse(pattern, re.ASCII | flags)


def width(nodes: list[Node]) -> tuple[int, int]:
    """(min, max) characters `nodes` match; max >= C.MAXREPEAT means unbounded."""
    return P.SubPattern(P.State(), nodes).getwidth()


_ALL_ASCII = (1 << 128) - 1
_DIGITS = sum(1 << c for c in range(48, 58))
_LETTERS = sum(1 << c for c in (*range(65, 91), *range(97, 123)))
_WORD = _DIGITS | _LETTERS | (1 << 95)
_SPACE = sum(1 << c for c in (9, 10, 11, 12, 13, 32))
_CATEGORIES = {
    C.CATEGORY_DIGIT: (_DIGITS, False),
    C.CATEGORY_NOT_DIGIT: (_ALL_ASCII & ~_DIGITS, True),
    C.CATEGORY_WORD: (_WORD, False),
    C.CATEGORY_NOT_WORD: (_ALL_ASCII & ~_WORD, True),
    C.CATEGORY_SPACE: (_SPACE, False),
    C.CATEGORY_NOT_SPACE: (_ALL_ASCII & ~_SPACE, True),
}


def union_charset(nodes: list[Node]) -> CharSet | None:
    """Every character `nodes` can match, or None when unknown."""
    mask, non_ascii = 0, False
    for op, av in nodes:
        if op in REPEATS:
            cs = union_charset(list(av[2].data))
        elif op is C.SUBPATTERN:
            cs = union_charset(list(av[3].data))
        elif op is C.BRANCH:
            cs = union_all([union_charset(list(b.data)) for b in av[1]])
        elif op is C.AT:
            continue
        else:
            cs = charset(op, av)
        if cs is None:
            return None
        mask, non_ascii = mask | cs[0], non_ascii or cs[1]
    return mask, non_ascii


class Sets(NamedTuple):
    all: CharSet
    first: CharSet
    last: CharSet


def union(a: CharSet, b: CharSet) -> CharSet:
    return a[0] | b[0], a[1] or b[1]


def edge_sets(nodes: list[Node]) -> Sets:
    """Characters `nodes` can match anywhere, first and last (over-approximated)."""
    whole = union_charset(nodes) or ANYTHING
    return Sets(whole, _edge(nodes, whole, last=False), _edge(nodes, whole, last=True))


def _edge(nodes: list[Node], whole: CharSet, *, last: bool) -> CharSet:
    acc: CharSet = (0, False)
    for node in reversed(nodes) if last else nodes:
        op, av = node
        if op is C.AT:
            continue
        if op in REPEATS:
            cs = _edge(list(av[2].data), whole, last=last)
        elif op is C.SUBPATTERN:
            cs = _edge(list(av[3].data), whole, last=last)
        elif op is C.BRANCH:
            cs = (0, False)
            for branch in av[1]:
                cs = union(cs, _edge(list(branch.data), whole, last=last))
        else:
            cs = charset(op, av) or whole
        acc = union(acc, cs)
        if _min_width(node) > 0:
            return acc
    return acc


def _min_width(node: Node) -> int:
    return width([node])[0]


def flatten(nodes: list[Node]) -> list[Node]:
    """Inline plain groups so `(\\d+)(\\d+)` is seen as adjacent repeats."""
    out: list[Node] = []
    for op, av in nodes:
        if op is C.SUBPATTERN:
            out.extend(flatten(list(av[3].data)))
        else:
            out.append((op, av))
    return out


def charset(op: Any, av: Any) -> CharSet | None:
    """Characters a single-character node matches (case folded both ways), else None."""
    if op is C.LITERAL:
        return _fold(1 << av) if av < 128 else (0, True)
    if op is C.NOT_LITERAL:
        return _ALL_ASCII, True
    if op is C.ANY:
        return _ALL_ASCII & ~(1 << 10), True
    if op is not C.IN:
        return None
    mask, non_ascii, negate = 0, False, False
    for item_op, item in av:
        if item_op is C.NEGATE:
            negate = True
        elif item_op is C.LITERAL:
            mask |= 1 << item if item < 128 else 0
            non_ascii = non_ascii or item >= 128
        elif item_op is C.RANGE:
            lo, hi = item
            mask |= sum(1 << c for c in range(lo, min(hi, 127) + 1))
            non_ascii = non_ascii or hi >= 128
        elif item_op is C.CATEGORY:
            m, n = _CATEGORIES.get(item, (_ALL_ASCII, True))
            mask, non_ascii = mask | m, non_ascii or n
        else:
            return _ALL_ASCII, True
    if negate:
        return _ALL_ASCII & ~mask, True
    return _fold(mask)[0], non_ascii


def _fold(mask: int) -> CharSet:
    upper = (mask >> 97 & ((1 << 26) - 1)) << 65
    lower = (mask >> 65 & ((1 << 26) - 1)) << 97
    return mask | upper | lower, False


def overlap(a: CharSet, b: CharSet) -> bool:
    return bool(a[0] & b[0]) or (a[1] and b[1])


def widths(pattern: str) -> tuple[int, int | None]:
    """The shortest and longest text `pattern` can match (None: unbounded)."""
    try:
        lo, hi = parse(pattern).getwidth()
    except (re.error, Warning):
        return 0, None
    return lo, None if hi >= C.MAXREPEAT else hi


def required_chars(pattern: str, *, case_insensitive: bool) -> frozenset[str] | None:
    """A small set of ASCII characters every match of `pattern` contains one of (None
    when no such set is known). A text with none of them cannot match."""
    try:
        parsed = parse(pattern, re.IGNORECASE if case_insensitive else 0)
    except (re.error, Warning):
        return None
    found = _required(list(parsed.data))
    if found is None or found[1]:
        return None
    return frozenset(chr(c) for c in range(128) if found[0] >> c & 1)


def _required(nodes: list[Node]) -> CharSet | None:
    best: CharSet | None = None
    for op, av in nodes:
        if op in REPEATS:
            found = _required(list(av[2].data)) if av[0] >= 1 else None
        elif op is C.SUBPATTERN:
            found = _required(list(av[3].data))
        elif op is C.BRANCH:
            found = union_all([_required(list(b.data)) for b in av[1]])
        else:
            found = charset(op, av)
        if found is not None and (best is None or _size(found) < _size(best)):
            best = found
    return best


def union_all(parts: list[CharSet | None]) -> CharSet | None:
    """The union of `parts`; None if any is unknown."""
    mask, non_ascii = 0, False
    for part in parts:
        if part is None:
            return None
        mask, non_ascii = mask | part[0], non_ascii or part[1]
    return mask, non_ascii


def _size(cs: CharSet) -> int:
    return cs[0].bit_count() + (1000 if cs[1] else 0)


_PLAIN_OPS = (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN)


def looks_around(pattern: str) -> bool:
    """Whether `pattern` may look at characters it does not match (anchors, `\\b`,
    lookaround, backreferences); True when unsure."""
    try:
        parsed = parse(pattern)
    except (re.error, Warning):
        return True
    return _looks_around(list(parsed.data))


def _looks_around(nodes: list[Node]) -> bool:
    for op, av in nodes:
        if op in _PLAIN_OPS:
            continue
        if op in REPEATS or op is C.POSSESSIVE_REPEAT:
            found = _looks_around(list(av[2].data))
        elif op is C.SUBPATTERN:
            found = _looks_around(list(av[3].data))
        elif op is C.BRANCH:
            found = any(_looks_around(list(b.data)) for b in av[1])
        elif op is C.ATOMIC_GROUP:
            found = _looks_around(list(av.data))
        else:  # AT, ASSERT, ASSERT_NOT, GROUPREF, GROUPREF_EXISTS, anything new
            found = True
        if found:
            return True
    return False
