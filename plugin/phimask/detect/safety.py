"""Guard for detector patterns that come from a policy file.

A policy pattern is untrusted: it must run in (near) linear time under Python's
backtracking `re`, mean the same thing to Hyperscan and `re`, and never match the empty
string. The checks work on the parsed pattern (`re._parser`), are conservative, and
name precisely what is wrong.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

from phimask.detect.patterns import (
    REPEATS,
    Node,
    Sets,
    charset,
    edge_sets,
    flatten,
    overlap,
    parse,
    union,
    union_charset,
    width,
)

if TYPE_CHECKING:  # typeshed only knows the deprecated public alias
    import sre_constants as C
else:
    import re._constants as C

MAX_PATTERN_LENGTH = 1000
# Bound on (max - min + 1) products over a run of adjacent overlapping repeats; each
# unit is a way `re` may backtrack through the run at one start position.
_MAX_RUN_CHOICES = 10_000
# A bounded repeat whose body can itself split the input several ways is rejected above
# this count: the ways multiply per iteration.
_MAX_AMBIGUOUS_COUNT = 4

_FORBIDDEN = {
    C.GROUPREF: "backreferences are not supported",
    C.GROUPREF_EXISTS: "conditional groups are not supported",
    C.ASSERT: "lookahead/lookbehind assertions are not supported",
    C.ASSERT_NOT: "lookahead/lookbehind assertions are not supported",
    C.ATOMIC_GROUP: "atomic groups are not supported",
    C.POSSESSIVE_REPEAT: "possessive quantifiers are not supported",
}
_ALLOWED_AT = (C.AT_BOUNDARY, C.AT_NON_BOUNDARY)


class PatternError(ValueError):
    """A detector pattern that cannot be used. The message never contains scanned text."""


class UnsafePatternError(PatternError):
    """A pattern rejected by `check_pattern_safe`; `reason` says what is wrong."""

    def __init__(self, reason: str, pattern: str | None = None, *, detector: str = "") -> None:
        where = f"detector {detector!r}: " if detector else ""
        shown = f" {pattern!r}" if pattern is not None else ""
        super().__init__(f"{where}unsafe pattern{shown}: {reason}")
        self.reason = reason


def check_pattern_safe(pattern: str) -> None:
    """Raise UnsafePatternError unless `pattern` is safe for both scan engines."""
    if not isinstance(pattern, str):
        raise UnsafePatternError("pattern must be a string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePatternError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if not pattern.isascii():
        raise UnsafePatternError("pattern must be ASCII", pattern)
    _reject(_lexical_problem(pattern), pattern)
    try:
        parsed = parse(pattern)
    except re.error as exc:
        raise UnsafePatternError(f"invalid regular expression: {exc.msg}", pattern) from None
    except Warning as exc:
        raise UnsafePatternError(f"ambiguous regular expression: {exc}", pattern) from None
    if parsed.state.flags & ~(C.SRE_FLAG_ASCII | C.SRE_FLAG_IGNORECASE):
        _reject("only the (?i) inline flag is supported", pattern)
    _reject(_tree_problem(list(parsed.data), unbounded_outer=False, repeat_outer=False), pattern)
    if parsed.getwidth()[0] == 0:
        _reject("pattern can match the empty string", pattern)
    _reject(compile_problem(pattern, case_insensitive=False), pattern)


def _reject(problem: str | None, pattern: str) -> None:
    if problem is not None:
        raise UnsafePatternError(problem, pattern)


def compile_problem(pattern: str, *, case_insensitive: bool) -> str | None:
    """Why `pattern` does not compile with `re` (or with Hyperscan when present)."""
    flags = re.ASCII | (re.IGNORECASE if case_insensitive else 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            re.compile(pattern, flags)
    except (re.error, Warning) as exc:
        return f"does not compile with re: {exc}"
    from phimask.detect.hyperscan_engine import hyperscan_problem  # imports this module

    return hyperscan_problem(pattern, case_insensitive=case_insensitive)


def _lexical_problem(pattern: str) -> str | None:
    """`{,n}` is a quantifier to `re` but a literal to Hyperscan."""
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":  # a leading ] is a literal
                i += 1
            continue
        elif ch == "{" and pattern[i + 1 : i + 2] == ",":
            return "quantifier {,n} is ambiguous; write {0,n}"
        i += 1
    return None


def _tree_problem(nodes: list[Node], *, unbounded_outer: bool, repeat_outer: bool) -> str | None:
    for op, av in nodes:
        if op in _FORBIDDEN:
            return _FORBIDDEN[op]
        if op is C.AT and av not in _ALLOWED_AT:
            return "anchors (^, $, \\A, \\Z) are not supported: detectors match anywhere in a text"
        if op in (C.LITERAL, C.NOT_LITERAL) and av > 127:
            return "non-ASCII characters are not supported"
        if op is C.IN and _has_non_ascii(av):
            return "non-ASCII characters are not supported"
        if op is C.SUBPATTERN:
            _, add_flags, _, sub = av
            if add_flags & ~C.SRE_FLAG_IGNORECASE:
                return "only the (?i) inline flag is supported"
            problem = _tree_problem(
                list(sub.data), unbounded_outer=unbounded_outer, repeat_outer=repeat_outer
            )
        elif op is C.BRANCH:
            if unbounded_outer:
                return "alternation inside unbounded repetition"
            branches = (
                _tree_problem(list(b.data), unbounded_outer=False, repeat_outer=repeat_outer)
                for b in av[1]
            )
            problem = next(filter(None, branches), None)
        elif op in REPEATS:
            problem = _repeat_problem(
                av, unbounded_outer=unbounded_outer, repeat_outer=repeat_outer
            )
        else:
            problem = None
        if problem:
            return problem
    return _run_problem(nodes)


def _has_non_ascii(items: list[Node]) -> bool:
    return any(
        (op is C.LITERAL and av > 127) or (op is C.RANGE and av[1] > 127) for op, av in items
    )


def _repeat_problem(av: Any, *, unbounded_outer: bool, repeat_outer: bool) -> str | None:
    _, hi, sub = av
    body: list[Node] = list(sub.data)
    unbounded = hi >= C.MAXREPEAT
    if unbounded_outer and hi > 1:
        return "nested unbounded repetition"
    if unbounded and repeat_outer:
        return "nested unbounded repetition"
    # Iterations of an ambiguous body can split the input many ways; a delimited one
    # (`(?:\d+-){2}`) cannot, so only the former constrains what is inside.
    ambiguous = hi > 1 and not unbounded and _ambiguous_body(body)
    if ambiguous and hi > _MAX_AMBIGUOUS_COUNT:
        return f"repetition of a variable-length group more than {_MAX_AMBIGUOUS_COUNT} times"
    return _tree_problem(
        body, unbounded_outer=unbounded_outer or unbounded, repeat_outer=repeat_outer or ambiguous
    )


def _ambiguous_body(body: list[Node]) -> bool:
    """Can one stretch of input be split into iterations of `body` in several ways?

    Fixed-width bodies cannot, nor bodies that end (`(?:\\d{1,3}\\.){3}`) or start
    (`(?::\\w{1,4}){6}`) with a character their other parts cannot match; anything
    else is assumed to.
    """
    lo, hi = width(body)
    if lo == hi:
        return False
    for edge, rest in ((body[-1:], body[:-1]), (body[:1], body[1:])):
        mark = charset(*edge[0]) if edge else None
        others = union_charset(rest)
        if mark is not None and others is not None and not overlap(mark, others):
            return False
    return True


def _run_problem(nodes: list[Node]) -> str | None:
    """Neighbouring repeats that can trade characters (`\\d+\\d+`, `\\d+\\s*\\d+`,
    `\\w+0\\w+`) backtrack polynomially; bound the product of their counts.

    An item joins the run before it when it can start with a character the run can
    match and the run can end with a character it can match. A run also continues
    through optional items.
    """
    run: Sets | None = None
    choices = 1
    for node in flatten(nodes):
        if node[0] is C.AT:
            continue
        lo, hi = width([node])
        span = C.MAXREPEAT if hi >= C.MAXREPEAT else hi - lo + 1
        item = edge_sets([node])
        joins = run is not None and overlap(item.first, run.all) and overlap(run.last, item.all)
        if span > 1 and joins:
            choices *= span
            if choices > _MAX_RUN_CHOICES:
                return "adjacent repetitions can match the same characters"
        if run is not None and (joins or lo == 0):
            last = item.last if lo > 0 else union(run.last, item.last)
            run = Sets(union(run.all, item.all), item.first, last)
        elif span > 1:
            run, choices = item, span
        else:
            run, choices = None, 1
    return None
