"""The residual-PHI monitor: an independent second pass over what phimask emits.

A sample of the masked records (`--monitor-sample-rate`, default 1%) is scanned again
with every built-in detector, whatever the policy disabled, plus the policy's own.
Values an operator produced (hashes, tokens, FF1 output that looks like a phone number
on purpose) are skipped; everything else that leaves - kept fields, unmapped strings,
scanned text after redaction - is checked. A hit is a policy gap: counted by detector
and path (`phimask_residual_phi_total`), logged, audited and put on the batch's span;
with `--monitor-mode block` the record is rejected (`residual_phi`) as well.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterator, Sequence
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

    def check(self, docs: Sequence[Any], produced: set[int]) -> dict[int, Counter[tuple[str, str]]]:
        """Hits by document index: (detector, path) -> count. `docs` holds the masked
        documents to check (None where a record is not sampled or was rejected)."""
        texts: list[str] = []
        where: list[tuple[int, str]] = []
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            for path, text in _strings(doc, "", 0):
                if id(text) not in produced:
                    texts.append(text)
                    where.append((index, path))
        hits: dict[int, Counter[tuple[str, str]]] = {}
        for (index, path), matches in zip(where, self.scanner.scan_many(texts), strict=True):
            for match in matches:
                hits.setdefault(index, Counter())[(match.detector.name, path)] += 1
        return hits


def _strings(value: Any, path: str, depth: int) -> Iterator[tuple[str, str]]:
    """(path, string) for every string in a document; list elements as `[*]`."""
    if depth > MAX_DEPTH:
        return
    t = type(value)
    if t is str:
        if value:
            yield path, value
    elif t is dict:
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif t is list:
        for item in value:
            yield from _strings(item, f"{path}[*]", depth + 1)
