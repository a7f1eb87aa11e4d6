"""Worker functions for WorkerProcesses tests (importable by spawned processes)."""

import time


def setup(_: object) -> None:
    pass


def echo_after(tag: str, seconds: float) -> str:
    time.sleep(seconds)
    return tag
