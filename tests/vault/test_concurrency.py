"""Many processes, many threads, one value: exactly one token, on both backends."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from pathlib import Path

from phimask.vault import open_vault

from .helpers import make_keys, raw
from .workers import FIELD, tokenize_in_threads

PROCESSES = 4
THREADS = 4
VALUES = [f"Patient {i:03d} Quux" for i in range(200)]


def test_processes_and_threads_agree_on_one_token_per_value(url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=tokenize_in_threads,
                         args=(url, str(tmp_path), VALUES, THREADS, start, results))
             for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    try:
        start.wait(timeout=30)  # every process has its vault open: go
        outcomes = [results.get(timeout=60) for _ in procs]
    except (queue.Empty, threading.BrokenBarrierError) as exc:
        raise AssertionError(f"a worker process did not report: {exc!r}") from None
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()

    assert [errors for _, errors in outcomes] == [[]] * PROCESSES
    every = [seen for thread_maps, _ in outcomes for seen in thread_maps]
    assert len(every) == PROCESSES * THREADS
    first = every[0]
    assert sorted(first) == sorted(VALUES)
    assert all(seen == first for seen in every)  # all processes, all threads agree
    assert len(set(first.values())) == len(VALUES)
    assert raw(url, "SELECT count(*) FROM phimask_tokens") == [(len(VALUES),)]
    with open_vault(url, tmp_path, make_keys()) as vault:
        assert all(vault.detokenize(token, FIELD) == value for value, token in first.items())
