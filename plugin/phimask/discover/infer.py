"""What a sample of log records holds, path by path, without keeping a single value.

Every value is reduced at once to what the proposal and the report need: its JSON
type, a salted hash for the distinct count, its SHAPE (`ddd-dd-dddd`, `Aaaa Aa{6}`),
which detectors hit it (the whole value, or inside free text), and whether the
operators that can refuse a value (fpe, generalize, zip3) would take it. The salt is
random per run, so the hashes cannot be compared with anything outside the run;
strings wait for the detectors only until their batch is scanned.

Paths are written as policies write them (policy/paths.py): an object's keys as
segments, `[*]` for array elements, `*` for keys that are not names: an empty key, a
key a detector hits or shaped like a full name (an e-mail address used as a key is
data, never printed), and every key of an object that had more than `MAX_KEYS`
distinct ones (a map keyed by ids or names, not a schema).
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..detect import Scanner
from ..operators import OperatorError
from ..operators.generalize import Generalize
from ..operators.zip3 import Zip3

KEY: Final = "k"
INDEX: Final = "i"
ANY: Final = "*"
Seg = tuple[str, str]  # (KEY, name) | (INDEX, "") | (ANY, "")
INDEX_SEG: Final[Seg] = (INDEX, "")
ANY_SEG: Final[Seg] = (ANY, "")

MAX_DEPTH = 64  # as deep as the pipeline masks; deeper records are rejected there
MAX_PATHS = 5_000  # paths tracked; values under further paths are only counted
MAX_KEYS = 256  # distinct keys under one object path; with more, all go under `*`
MAX_SHAPES = 32  # distinct shapes kept per path; more are counted as "other"
SKETCH_K = 512  # distinct hashes kept per path: exact below, estimated above
BATCH = 1_000  # records whose strings go to the scanner in one call
# Integers this long are scanned (an SSN stored as a number), as the pipeline does.
SCAN_INT_FROM = 100_000
_CHECK_MAX_LEN = 64  # a longer value is no date, age or ZIP
_TEXT_FROM = 40  # a value this long with 4+ words is free text; its shape is its length

# Operators that refuse some values (the record is then rejected): checked per value.
FIT_OPS = ("fpe", "date", "birth_date", "age", "zip3")
FPE_MIN_DIGITS = 6  # FF1's minimum domain in digits (operators/fpe.py)

_DIGITS = re.compile(r"\d", re.ASCII)
_NAME_LIKE = re.compile(r"[A-Z][A-Za-z'.-]{1,30}(?: [A-Z][A-Za-z'.-]{1,30}){1,3}")
_GENERALIZERS = {kind: Generalize(kind=kind) for kind in ("date", "birth_date", "age")}
_ZIP3 = Zip3()


@dataclass(frozen=True, slots=True)
class PathId:
    """A path inside one document root (`payload`, `attributes`, `resource`)."""

    root: str
    segs: tuple[Seg, ...]

    def child(self, seg: Seg) -> PathId:
        return PathId(self.root, (*self.segs, seg))

    @property
    def last_key(self) -> str | None:
        """The key that holds the value (for `phones[*]`, `phones`); None under `*`."""
        for kind, name in reversed(self.segs):
            if kind == KEY:
                return name
            if kind == ANY:
                return None
        return None


class DistinctSketch:
    """Distinct count with bounded memory: the K smallest 64-bit hashes (KMV). Exact
    while fewer than K distinct values were seen, then an estimate (~4% error)."""

    __slots__ = ("_heap", "_members", "added", "k")

    def __init__(self, k: int = SKETCH_K) -> None:
        self.k = k
        self.added = 0  # values added, repeats included: the estimate never exceeds it
        self._heap: list[int] = []  # negated: the largest kept hash on top
        self._members: set[int] = set()

    def add(self, h: int) -> None:
        self.added += 1
        if h in self._members:
            return
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, -h)
            self._members.add(h)
        elif h < -self._heap[0]:
            dropped = -heapq.heapreplace(self._heap, -h)
            self._members.discard(dropped)
            self._members.add(h)

    def merge(self, other: DistinctSketch) -> None:
        added = self.added + other.added
        for h in other._members:
            self.add(h)
        self.added = added

    @property
    def exact(self) -> bool:
        return len(self._heap) < self.k

    def estimate(self) -> int:
        if self.exact:
            return len(self._heap)
        kth = -self._heap[0]
        return min(self.added, max(self.k, round((self.k - 1) * 2**64 / (kth + 1))))


def _char_class(ch: str) -> str:
    if ch.isdigit():
        return "d"
    if ch.isalpha():
        return "A" if ch.isupper() else "a"
    if ch.isspace():
        return " "
    if " " < ch <= "~":
        return ch  # ASCII punctuation: a separator, kept
    return "?"


_SHAPE_TABLE = str.maketrans({chr(i): _char_class(chr(i)) for i in range(128)})
_RUNS = re.compile(r"([daA])\1{4,}|([^daA])\2{2,}")


def shape_of(text: str, *, max_symbols: int = 40) -> str:
    """`123-45-6789` -> `ddd-dd-dddd`; `Ann Lee` -> `Aaa Aaa`; runs of 5+ letters or
    digits collapse (`d{10}`), as do runs of 3+ separators; free text gives only its
    length class (`text(65-128)`). No character of the value survives but ASCII
    punctuation."""
    if len(text) > _TEXT_FROM and len(text.split(None, 4)) > 4:
        return f"text({_length_class(len(text))})"
    mapped = text.translate(_SHAPE_TABLE)
    if not mapped.isascii():
        mapped = "".join(ch if ch.isascii() else _char_class(ch) for ch in mapped)
    shape = _RUNS.sub(lambda m: f"{m[0][0]}{{{len(m[0])}}}", mapped)
    if len(shape) > max_symbols:
        shape = shape[:max_symbols] + "…"
    return shape or "(empty)"


def _length_class(n: int) -> str:
    lo = _TEXT_FROM + 1
    hi = 64
    while n > hi:
        lo, hi = hi + 1, hi * 2
    return f"{lo}-{hi}"


@dataclass(eq=False, slots=True)
class PathStats:
    path: PathId
    order: int  # first seen
    count: int = 0  # values seen at this path
    types: Counter[str] = field(default_factory=Counter)
    distinct: DistinctSketch = field(default_factory=DistinctSketch)
    shapes: Counter[str] = field(default_factory=Counter)
    shapes_other: int = 0
    scanned: int = 0  # values the detectors looked at (strings, long integers)
    hit_values: int = 0  # ... with at least one detector hit
    whole: Counter[str] = field(default_factory=Counter)  # detector -> values it IS
    inside: Counter[str] = field(default_factory=Counter)  # detector -> values it is IN
    strings: int = 0
    name_like: int = 0  # strings shaped like a personal name (`Aaaa Aaaa`)
    text_like: int = 0  # strings of free text (4+ words)
    checked: int = 0  # values checked against FIT_OPS
    unfit: set[str] = field(default_factory=set)  # FIT_OPS some value here cannot take
    keys_seen: int = 0  # keys read under this object path
    key_hits: Counter[str] = field(default_factory=Counter)  # detector -> keys it hit
    dynamic_keys: int = 0  # keys merged under `*` because the object had too many
    child_keys: set[str] = field(default_factory=set)

    def merge(self, other: PathStats) -> None:
        """Fold `other` (the same place under another key) into this one."""
        self.order = min(self.order, other.order)
        self.count += other.count
        self.types.update(other.types)
        self.distinct.merge(other.distinct)
        for shape, n in other.shapes.items():
            if shape in self.shapes or len(self.shapes) < MAX_SHAPES:
                self.shapes[shape] += n
            else:
                self.shapes_other += n
        self.shapes_other += other.shapes_other
        self.scanned += other.scanned
        self.hit_values += other.hit_values
        self.whole.update(other.whole)
        self.inside.update(other.inside)
        self.strings += other.strings
        self.name_like += other.name_like
        self.text_like += other.text_like
        self.checked += other.checked
        self.unfit |= other.unfit
        self.keys_seen += other.keys_seen
        self.key_hits.update(other.key_hits)
        self.dynamic_keys += other.dynamic_keys
        self.child_keys |= other.child_keys

    @property
    def scalar_count(self) -> int:
        """Values an operator would be applied to (not null, not a boolean, not a
        container)."""
        return sum(self.types[t] for t in ("string", "integer", "number", "bytes"))

    @property
    def is_container(self) -> bool:
        return bool(self.types["object"] or self.types["array"])

    @property
    def hit_rate(self) -> float:
        return self.hit_values / self.scanned if self.scanned else 0.0

    def whole_rate(self) -> float:
        return sum(self.whole.values()) / self.scanned if self.scanned else 0.0


@dataclass
class Sample:
    """Everything discover learned; no value in it."""

    records: int
    paths: list[PathStats]  # in first-seen order
    too_deep: int  # records with values deeper than MAX_DEPTH (the pipeline rejects them)
    untracked: int  # values under paths beyond MAX_PATHS, not analysed
    roots: tuple[str, ...]


class Inference:
    """Feed documents (`{"payload": ..., "attributes": {...}}`) with `add`, then
    `finish`. Strings are held only until their batch has been scanned."""

    def __init__(self, scanner: Scanner, *, salt: bytes | None = None, batch: int = BATCH,
                 max_paths: int = MAX_PATHS, max_keys: int = MAX_KEYS) -> None:
        self._scanner = scanner
        self._salt = salt if salt is not None else os.urandom(16)
        self._batch = batch
        self._max_paths = max_paths
        self._max_keys = max_keys
        self._paths: dict[PathId, PathStats] = {}
        self._roots: dict[str, None] = {}
        self._jobs: list[tuple[PathStats, str]] = []
        self._pending = 0
        self._records = 0
        self._too_deep = 0
        self._untracked = 0
        self._clean_keys: set[str] = set()  # keys no detector hits: names, kept
        self._phi_keys: dict[int, str] = {}  # salted hash of a key -> detector

    def add(self, doc: Mapping[str, Any]) -> None:
        self._records += 1
        deep = False
        for root, value in doc.items():
            self._roots.setdefault(root)
            deep = not self._walk(PathId(root, ()), value, 0) or deep
        if deep:
            self._too_deep += 1
        self._pending += 1
        if self._pending >= self._batch:
            self._flush()

    def add_all(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            self.add(doc)

    def finish(self) -> Sample:
        self._flush()
        self._merge_maps()
        paths = sorted(self._paths.values(), key=lambda s: s.order)
        return Sample(self._records, paths, self._too_deep, self._untracked,
                      tuple(self._roots))

    def _merge_maps(self) -> None:
        """An object that had more than `max_keys` distinct keys is a map keyed by data
        (ids, names): ALL its keys, not only those past the limit, go under `*`, so
        none of them is ever printed as a path."""
        merged: set[PathId] = set()
        while True:
            maps = [s.path for s in self._paths.values()
                    if s.dynamic_keys and s.path not in merged]
            if not maps:
                return
            parent = min(maps, key=lambda p: len(p.segs))
            merged.add(parent)
            self._paths[parent].child_keys.clear()
            n = len(parent.segs)
            for path in list(self._paths):
                if (path.root != parent.root or len(path.segs) <= n
                        or path.segs[n][0] != KEY or path.segs[:n] != parent.segs):
                    continue
                stats = self._paths.pop(path)
                renamed = PathId(path.root, (*parent.segs, ANY_SEG, *path.segs[n + 1:]))
                target = self._paths.get(renamed)
                if target is None:
                    stats.path = renamed
                    self._paths[renamed] = stats
                else:
                    target.merge(stats)
                if renamed in merged or path in merged:
                    merged.add(renamed)

    # -- walking --------------------------------------------------------------

    def _stats(self, path: PathId) -> PathStats | None:
        stats = self._paths.get(path)
        if stats is None:
            if len(self._paths) >= self._max_paths:
                return None
            stats = self._paths[path] = PathStats(path, len(self._paths))
        return stats

    def _walk(self, path: PathId, value: Any, depth: int) -> bool:
        """False when the value nests deeper than MAX_DEPTH."""
        stats = self._stats(path)
        if stats is None:
            self._untracked += 1
            return True
        stats.count += 1
        t = type(value)
        if t is dict:
            stats.types["object"] += 1
            if depth >= MAX_DEPTH:
                return False
            ok = True
            for key, item in value.items():
                ok = self._walk(path.child(self._key_seg(stats, key)), item, depth + 1) and ok
            return ok
        if t is list:
            stats.types["array"] += 1
            if depth >= MAX_DEPTH:
                return False
            ok = True
            child = path.child(INDEX_SEG)
            for item in value:
                ok = self._walk(child, item, depth + 1) and ok
            return ok
        if t is str:
            stats.types["string"] += 1
            self._string(stats, value)
        elif t is bool:
            stats.types["boolean"] += 1
        elif t is int:
            stats.types["integer"] += 1
            text = str(value)
            stats.distinct.add(self._hash("i", text))
            self._shape(stats, text)
            if abs(value) >= SCAN_INT_FROM:
                stats.scanned += 1
                self._jobs.append((stats, text))
            self._check(stats, value)
        elif t is float:
            stats.types["number"] += 1
            text = repr(value)
            stats.distinct.add(self._hash("f", text))
            self._shape(stats, text)
            self._check(stats, value)
        elif value is None:
            stats.types["null"] += 1
        elif t is bytes:
            stats.types["bytes"] += 1  # never scanned by the pipeline either
            stats.distinct.add(self._hash("b", value.hex()))
        else:
            stats.types[t.__name__] += 1
        return True

    def _string(self, stats: PathStats, value: str) -> None:
        stats.strings += 1
        stats.distinct.add(self._hash("s", value))
        self._shape(stats, value)
        if value:
            stats.scanned += 1
            self._jobs.append((stats, value))
        if len(value) <= _CHECK_MAX_LEN and _NAME_LIKE.fullmatch(value):
            stats.name_like += 1
        if len(value) > _TEXT_FROM and len(value.split(None, 4)) > 4:
            stats.text_like += 1
        self._check(stats, value)

    def _shape(self, stats: PathStats, text: str) -> None:
        shape = shape_of(text)
        if shape in stats.shapes or len(stats.shapes) < MAX_SHAPES:
            stats.shapes[shape] += 1
        else:
            stats.shapes_other += 1

    def _check(self, stats: PathStats, value: str | int | float) -> None:
        stats.checked += 1
        if len(stats.unfit) == len(FIT_OPS):
            return
        for op in FIT_OPS:
            if op not in stats.unfit and not _fits(op, value):
                stats.unfit.add(op)

    def _key_seg(self, stats: PathStats, key: Any) -> Seg:
        stats.keys_seen += 1
        if not isinstance(key, str) or not key:
            return ANY_SEG
        if key in stats.child_keys:
            return (KEY, key)
        if key not in self._clean_keys:
            digest = self._hash("k", key)
            hit = self._phi_keys.get(digest)
            if hit is None:
                matches = self._scanner.scan(key)
                if matches:
                    hit = self._phi_keys[digest] = matches[0].detector.name
                elif len(key) <= _CHECK_MAX_LEN and _NAME_LIKE.fullmatch(key):
                    hit = self._phi_keys[digest] = "name-shaped"  # `John Smith` as a key
                elif len(self._clean_keys) < 100_000:
                    self._clean_keys.add(key)
            if hit is not None:
                stats.key_hits[hit] += 1
                return ANY_SEG
        if len(stats.child_keys) < self._max_keys:
            stats.child_keys.add(key)
            return (KEY, key)
        stats.dynamic_keys += 1
        return ANY_SEG

    def _hash(self, tag: str, text: str) -> int:
        data = (tag + text).encode("utf-8", "surrogatepass")
        return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=self._salt).digest())

    # -- scanning -------------------------------------------------------------

    def _flush(self) -> None:
        jobs, self._jobs, self._pending = self._jobs, [], 0
        if not jobs:
            return
        results = self._scanner.scan_many([text for _, text in jobs])
        for (stats, text), matches in zip(jobs, results, strict=True):
            if not matches:
                continue
            stats.hit_values += 1
            start = len(text) - len(text.lstrip())
            end = len(text.rstrip())
            if len(matches) == 1 and matches[0].start <= start and matches[0].end >= end:
                stats.whole[matches[0].detector.name] += 1
                continue
            for name in {m.detector.name for m in matches}:
                stats.inside[name] += 1


def _fits(op: str, value: str | int | float) -> bool:
    if op == "fpe":
        if isinstance(value, float):
            return False
        return len(_DIGITS.findall(str(value))) >= FPE_MIN_DIGITS
    if isinstance(value, str) and len(value) > _CHECK_MAX_LEN:
        return False
    apply: Callable[[Any], Any] = _ZIP3.apply if op == "zip3" else _GENERALIZERS[op].apply
    try:
        apply(value)
    except OperatorError:
        return False
    return True
