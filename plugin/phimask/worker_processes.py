"""N masking processes, each with its own pipe, handed requests one at a time.

Why not ProcessPoolExecutor: its workers share one task queue and its lock, and a
worker killed at the wrong moment (the OOM killer) can leave the pool hung for good.
Here a worker owns its pipe: when it dies, its pipe closes, exactly one request
learns of it, and a new process takes its place. An idle worker is handed the next
request whatever connection it came on, so N cores serve even one HTTP/2 connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("phimask.workers")
START_TIMEOUT = 120.0


class WorkerDied(Exception):
    """The worker process ended (killed, out of memory) while it had our request."""


class _NotSent(Exception):
    """The worker was gone before the request reached it: nothing of it ran."""


def _worker_main(conn: Connection, setup: Callable[[Any], None], setup_arg: Any,
                 handle: Callable[..., Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server process decides when to stop
    try:
        setup(setup_arg)
    except Exception as exc:
        conn.send(("failed", type(exc).__name__))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        conn.send(handle(*message))


class _Worker:
    def __init__(self, index: int, setup: Callable[[Any], None], setup_arg: Any,
                 handle: Callable[..., Any]) -> None:
        ctx = get_context("spawn")  # never fork a process that runs gRPC
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, setup, setup_arg, handle),
                                   name=f"phimask-worker-{index}", daemon=True)
        self.process.start()
        child.close()
        self.index = index

    def wait_ready(self) -> None:
        if not self.conn.poll(START_TIMEOUT):
            raise RuntimeError(f"masking worker {self.index} did not start")
        try:
            state, detail = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"masking worker {self.index} exited while starting") from None
        if state != "ready":
            raise RuntimeError(f"masking worker {self.index} failed to start: {detail}")

    def call(self, message: tuple[Any, ...]) -> Any:
        if not self.process.is_alive():
            raise _NotSent
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise _NotSent from None
        try:
            return self.conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            raise WorkerDied from None

    def stop(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class WorkerProcesses:
    """`setup(setup_arg)` runs once in each new worker; `handle(*message)` per call."""

    def __init__(self, count: int, setup: Callable[[Any], None], setup_arg: Any,
                 handle: Callable[..., Any]) -> None:
        self.count = count
        self._spec = (setup, setup_arg, handle)
        self._io = ThreadPoolExecutor(max_workers=count, thread_name_prefix="phimask-io")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: list[_Worker] = []
        self._background: set[asyncio.Future[None]] = set()

    @property
    def idle(self) -> int:
        return self._idle.qsize() if self._idle is not None else 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle = asyncio.Queue()
        self._all = [_Worker(i, *self._spec) for i in range(self.count)]
        await asyncio.gather(*(loop.run_in_executor(self._io, w.wait_ready) for w in self._all))
        for worker in self._all:
            self._idle.put_nowait(worker)

    async def call(self, *message: Any) -> Any:
        assert self._idle is not None, "start() first"
        loop = asyncio.get_running_loop()
        worker = await self._idle.get()
        owned = True  # whether this call still has to hand `worker` back
        try:
            for attempt in (1, 2):
                future = loop.run_in_executor(self._io, worker.call, message)
                try:
                    return await asyncio.shield(future)
                except asyncio.CancelledError:
                    # The caller went away, the worker did not: it is handed back only
                    # once it has answered, or two requests would share one pipe.
                    owned = False
                    future.add_done_callback(functools.partial(self._finished_late, worker))
                    raise
                except _NotSent:
                    if attempt == 2:
                        raise
                    worker = await self._replace(worker)  # it died idle: nothing ran yet
            raise AssertionError("unreachable")
        except (WorkerDied, _NotSent):
            worker = await self._replace(worker)
            raise
        finally:
            if owned:
                self._idle.put_nowait(worker)

    def _finished_late(self, worker: _Worker, future: asyncio.Future[Any]) -> None:
        assert self._idle is not None
        if future.cancelled() or future.exception() is not None:
            task = asyncio.ensure_future(self._replace_then_release(worker))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            self._idle.put_nowait(worker)

    async def _replace_then_release(self, worker: _Worker) -> None:
        assert self._idle is not None
        try:
            worker = await self._replace(worker)
        finally:
            self._idle.put_nowait(worker)

    async def _replace(self, dead: _Worker) -> _Worker:
        log.error("a masking worker died; starting another",
                  extra={"worker": dead.index, "exit_code": dead.process.exitcode})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, dead.stop, 0.1)
        fresh = _Worker(dead.index, *self._spec)
        await loop.run_in_executor(self._io, fresh.wait_ready)
        self._all[dead.index] = fresh
        return fresh

    def close(self) -> None:
        for worker in self._all:
            worker.stop()
        self._io.shutdown(wait=False)
