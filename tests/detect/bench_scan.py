"""Not a test: `python -m tests.detect.bench_scan` prints µs per string per engine."""

from __future__ import annotations

import time

from phimask.detect import Scanner, available_engines, builtin_detectors
from tests.detect.corpus import realistic_corpus


def main() -> None:
    texts = realistic_corpus(10_000)
    detectors = builtin_detectors()
    for engine in available_engines():
        scanner = Scanner.build(detectors, engine)
        scanner.scan_many(texts)
        best = min(_timed(scanner, texts) for _ in range(7))
        found = sum(map(len, scanner.scan_many(texts)))
        print(f"{engine:10s} {best / len(texts) * 1e6:6.2f} µs/string  ({found} matches)")


def _timed(scanner: Scanner, texts: list[str]) -> float:
    start = time.perf_counter()
    scanner.scan_many(texts)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
