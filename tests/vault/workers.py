"""What each spawned process runs in the multi-process tests (importable by name)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from phimask.vault import open_vault

from .helpers import make_keys

FIELD = "patient.name"
BATCH = 25


def tokenize_in_threads(url: str, state_dir: str, values: list[str], threads: int,
                        start: Any, results: Any) -> None:
    """Open a vault (no cache: every call reaches the store), wait for every process,
    then tokenize all `values` from `threads` threads at once; even threads one value
    at a time, odd threads in batches, in the opposite order. Puts (results, errors)."""
    vault = open_vault(url, Path(state_dir), make_keys(), cache_size=0)
    seen: list[dict[str, str]] = [{} for _ in range(threads)]
    errors: list[str] = []
    gate = threading.Barrier(threads)

    def run(i: int) -> None:
        try:
            gate.wait()
            if i % 2 == 0:
                for value in values:
                    seen[i][value] = vault.tokenize(FIELD, value)
            else:
                order = values[::-1]
                for at in range(0, len(order), BATCH):
                    batch = order[at:at + BATCH]
                    seen[i].update(zip(batch, vault.tokenize_many(FIELD, batch), strict=True))
        except Exception as exc:  # reported to the test, which fails on it
            errors.append(f"{type(exc).__name__}: {exc}")

    try:
        start.wait(timeout=30)
        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        vault.close()
    results.put((seen, errors))
