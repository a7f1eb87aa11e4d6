"""The residual-PHI monitor: an independent second pass over what phimask emits.

A sample of the masked records (`--monitor-sample-rate`, default 1%) is scanned again
with every built-in detector, whatever the policy disabled, plus the policy's own.
Values an operator produced (hashes, tokens, FF1 output that looks like a phone number
on purpose) and values a rule decided to keep are skipped; everything else that
leaves - unmapped strings, scanned text after redaction - is checked. A hit is a policy
gap: counted by detector and path (`phimask_residual_phi_total`), logged, audited and
put on the batch's span;
with `--monitor-mode block` the record is rejected (`residual_phi`) as well.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .detect import Detector, Scanner, builtin_detectors

log = logging.getLogger("phimask.monitor")
MAX_DEPTH = 64


class ResidualMonitor:
    def __init__(self, policy_detectors: Sequence[Detector], rate: float, mode: str,
                 engine: str = "auto", rng: random.Random | None = None) -> None:
        names = {d.name for d in builtin_detectors()}
        detectors = [*builtin_detectors(), *(d for d in policy_detectors if d.name not in names)]
        self.scanner = Scanner.build(detectors, engine=engine)
        self.rate = rate
        self.block = mode == "block"
        self._random = (rng or random.Random()).random

    def sampled(self) -> bool:
        return self.rate >= 1.0 or (self.rate > 0.0 and self._random() < self.rate)

    def check(self, docs: Sequence[Any], produced: set[int],
              named: Callable[[tuple[Any, ...]], bool]) -> MonitorResult:
        """Scan the masked documents in `docs` (None where a record is not sampled or
        was rejected). `named(segments)` says whether an explicit rule covers a path:
        the values it does not are drift, counted by path with their detector hits."""
        texts: list[str] = []
        where: list[tuple[int, str, bool]] = []
        result = MonitorResult()
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            for segments, text in _strings(doc, (), 0, produced):
                path = _render(segments)
                unmapped = not named(segments)
                if unmapped:
                    result.unmapped[path] += 1
                texts.append(text)
                where.append((index, path, unmapped))
        for (index, path, unmapped), matches in zip(where, self.scanner.scan_many(texts),
                                                    strict=True):
            for match in matches:
                result.hits.setdefault(index, Counter())[(match.detector.name, path)] += 1
            if matches and unmapped:
                result.unmapped_phi[path] += 1
        return result


@dataclass
class MonitorResult:
    # document index -> (detector, path) -> matches
    hits: dict[int, Counter[tuple[str, str]]] = field(default_factory=dict)
    unmapped: Counter[str] = field(default_factory=Counter)  # path -> values no rule names
    unmapped_phi: Counter[str] = field(default_factory=Counter)  # ... with a detector hit


def _strings(value: Any, path: tuple[Any, ...], depth: int, skip: set[int]
             ) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path segments, string) for every string in a document but those in `skip`
    (by identity: what operators made, what rules kept); a list element's segment is
    0, whatever its index (paths are counted, not positions)."""
    if depth > MAX_DEPTH or id(value) in skip:
        return
    t = type(value)
    if t is str:
        if value:
            yield path, value
    elif t is dict:
        for key, item in value.items():
            yield from _strings(item, (*path, key), depth + 1, skip)
    elif t is list:
        for item in value:
            yield from _strings(item, (*path, 0), depth + 1, skip)


def _render(segments: tuple[Any, ...]) -> str:
    out = ""
    for seg in segments:
        out += "[*]" if type(seg) is int else (f".{seg}" if out else str(seg))
    return out
