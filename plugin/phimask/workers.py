"""Run batches on N worker processes, whatever connection they arrived on.

The server process only moves bytes: each serialized request goes to the next idle
worker, which parses, masks and serializes the reply. SO_REUSEPORT would spread load
by connection, and Vector sends everything over one HTTP/2 connection; a shared task
queue spreads it by request. With `workers=0` batches run on a thread of the server
process instead (tests, tiny deployments).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from .adapters.native import Limits, RequestError, transform_request
from .config import Settings
from .pipeline import Masker
from .runtime import build_masker

log = logging.getLogger("phimask.workers")

# Requests smaller than this are not worth cutting across workers.
SPLIT_FROM_BYTES = 64 * 1024
MAX_PARTS = 8
# A worker's result: the reply, or (status name, message) for a request error.
Outcome = tuple[bool, bytes | tuple[str, str]]

_masker: Masker | None = None
_limits = Limits()


def _init_worker(settings: Settings) -> None:
    global _masker, _limits
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server process decides when to stop
    _masker = build_masker(settings)
    _limits = Limits(settings.max_batch_records)


def _ping() -> int:
    assert _masker is not None
    return os.getpid()


def _transform(data: bytes, part: tuple[int, int] = (0, 1)) -> Outcome:
    assert _masker is not None
    try:
        return True, transform_request(_masker, data, _limits, part)
    except RequestError as exc:
        return False, (exc.status, str(exc))
    except Exception as exc:  # never let a value-bearing exception cross the process line
        log.error("masking failed", extra={"error_type": type(exc).__name__})
        return False, ("INTERNAL", "internal error while masking the batch")


class BatchRunner:
    """Runs transform_request for the server, bounded by `inflight_limit`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = settings.workers
        self._slots: asyncio.Semaphore | None = None
        self._busy = 0  # worker tasks submitted and not finished
        self._executor: Executor = self._new_executor()

    def _new_executor(self) -> Executor:
        if self.workers == 0:
            _init_worker_inline(self.settings)
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="phimask-mask")
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=get_context("spawn"),  # never fork a process that runs gRPC
            initializer=_init_worker,
            initargs=(self.settings,),
        )

    async def start(self) -> None:
        """Start every worker and load its policy before the server says SERVING."""
        self._slots = asyncio.Semaphore(self.settings.inflight_limit)
        loop = asyncio.get_running_loop()
        pings = [loop.run_in_executor(self._executor, _ping) for _ in range(max(1, self.workers))]
        await asyncio.gather(*pings)

    async def run(self, data: bytes, *, wait: bool = False) -> bytes:
        """Mask one serialized request. At the in-flight limit a unary call is told
        UNAVAILABLE at once; a stream (`wait=True`) waits, which stops it reading and
        lets HTTP/2 flow control push back on the client."""
        assert self._slots is not None, "start() first"
        if not wait and self._slots.locked():
            raise RequestError("UNAVAILABLE", "phimask is at its in-flight batch limit; retry")
        async with self._slots:
            parts = self._parts(len(data))
            outcomes = await asyncio.gather(*(self._submit(data, (i, parts)) for i in range(parts)))
        replies: list[bytes] = []
        for ok, result in outcomes:
            if not ok:
                status, message = result
                raise RequestError(str(status), str(message))
            assert isinstance(result, bytes)
            replies.append(result)
        return b"".join(replies)

    def _parts(self, size: int) -> int:
        """Into how many slices to cut a request: one per idle worker when it is big
        enough, so a batch's latency at low load is a fraction of its masking time.
        At full load no worker is idle and nothing is cut."""
        if self.workers < 2 or size < SPLIT_FROM_BYTES:
            return 1
        return max(1, min(self.workers - self._busy, MAX_PARTS))

    async def _submit(self, data: bytes, part: tuple[int, int]) -> Outcome:
        loop = asyncio.get_running_loop()
        self._busy += 1
        try:
            executor = self._executor
            try:
                future = loop.run_in_executor(executor, _transform, data, part)
            except BrokenProcessPool:  # a worker died while idle: nothing of this ran yet
                executor = self._replace(executor)
                future = loop.run_in_executor(executor, _transform, data, part)
            try:
                return await future
            except BrokenProcessPool:
                self._replace(executor)
                raise RequestError("UNAVAILABLE", "a masking worker died; retry") from None
        finally:
            self._busy -= 1

    def _replace(self, broken: Executor) -> Executor:
        if broken is self._executor:  # the first to notice replaces the pool
            log.error("a masking worker died; restarting the workers")
            broken.shutdown(wait=False)
            self._executor = self._new_executor()
        return self._executor

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _init_worker_inline(settings: Settings) -> None:
    global _masker, _limits
    _masker = build_masker(settings)
    _limits = Limits(settings.max_batch_records)
