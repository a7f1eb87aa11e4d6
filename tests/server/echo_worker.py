"""Worker functions for WorkerProcesses tests (importable by spawned processes)."""

import os
import time
from pathlib import Path

SLOW_START = 5.0  # seconds a worker takes to start while its marker file exists


def setup(_: object) -> None:
    pass


def echo_after(tag: str, seconds: float) -> str:
    time.sleep(seconds)
    return tag


def slow_start_if(marker: str) -> None:
    """Start at once, or in SLOW_START seconds while the file `marker` exists."""
    if os.path.exists(marker):
        time.sleep(SLOW_START)


def fail_start_if(marker: str) -> None:
    """Fail to start while the file `marker` exists."""
    if os.path.exists(marker):
        raise ValueError("told to fail")


def pid_after(tag: str, seconds: float, pidfile: str | None = None) -> tuple[str, int]:
    """`tag` and this worker's pid, after `seconds`; the pid is written to `pidfile` first."""
    if pidfile is not None:
        Path(pidfile).write_text(str(os.getpid()))
    time.sleep(seconds)
    return tag, os.getpid()
