"""N masking processes, each with its own pipe, handed requests one at a time.

Why not ProcessPoolExecutor: its workers share one task queue and its lock, and a
worker killed at the wrong moment (the OOM killer) can leave the pool hung for good.
Here a worker owns its pipe: when it dies, its pipe closes and only the request it
held (if any) learns of it. A supervisor task per worker slot waits on the process's
sentinel and starts a new process as soon as the old one is gone, so no request waits
for a start; until the new one is ready, requests go to the other workers. An idle
worker is handed the next request whatever connection it came on, so N cores serve
even one HTTP/2 connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("phimask.workers")
START_TIMEOUT = 120.0
# A worker that dies sooner than this after it was ready counts as failing to start;
# a slot that keeps failing waits BACKOFF_FIRST, doubling up to BACKOFF_MAX, between
# starts, so a worker that cannot start does not take a core restarting.
MIN_UPTIME = 2.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


class WorkerDied(Exception):
    """The worker process ended (killed, out of memory) while it had our request."""


class WorkersDown(Exception):
    """No worker is up, and every slot keeps failing to start one."""


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
        self.starting = True  # a thread is reading its pipe in wait_ready()
        self.alive = False  # ready and not known to be dead: it may be handed a request
        self.busy = False  # a call holds it: only that call uses or closes its pipe
        self.ready_at: float | None = None

    def wait_ready(self) -> str | None:
        """None once it is ready, else why not (a type name at most, never a value)."""
        try:
            if not self.conn.poll(START_TIMEOUT):
                return "start timed out"
            state, detail = self.conn.recv()
        except (EOFError, OSError):
            return "exited while starting"
        finally:
            self.starting = False
        return None if state == "ready" else f"setup raised {detail}"

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
        if self.starting:  # nothing to finish; its pipe is left to the thread reading it
            self.process.kill()
            self.process.join()
            return
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
        self._starter = ThreadPoolExecutor(max_workers=count, thread_name_prefix="phimask-start")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: list[_Worker] = []  # each slot's newest process
        self._failures = [0] * count  # per slot: starts failed in a row, for the backoff
        self._start_failed = [False] * count  # per slot: its newest process never got ready
        self._supervisors: list[asyncio.Task[None]] = []
        # close() runs on a thread of its own: no process may start once it has begun.
        self._lock = threading.Lock()
        self._closing = False

    @property
    def idle(self) -> int:
        return sum(w.alive and not w.busy for w in self._all)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle = asyncio.Queue()
        with self._lock:
            self._all = [_Worker(i, *self._spec) for i in range(self.count)]
        failures = await asyncio.gather(
            *(loop.run_in_executor(self._starter, w.wait_ready) for w in self._all))
        for worker, failure in zip(self._all, failures, strict=True):
            if failure is not None:
                raise RuntimeError(f"masking worker {worker.index} did not start: {failure}")
        for worker in self._all:
            self._ready(worker)
            self._supervisors.append(asyncio.create_task(self._supervise(worker)))

    async def call(self, *message: Any) -> Any:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            worker = await self._take()
            owned = True  # whether this call still has to hand `worker` back
            future = loop.run_in_executor(self._io, worker.call, message)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # The caller went away, the worker did not: it is handed back only
                # once it has answered, or two requests would share one pipe.
                owned = False
                future.add_done_callback(functools.partial(self._finished_late, worker))
                raise
            except _NotSent:  # it died idle, before its sentinel told us: nothing ran
                worker.alive = False
                if attempt == 2:
                    raise
            except WorkerDied:
                worker.alive = False
                raise
            finally:
                if owned:
                    self._release(worker)
        raise AssertionError("unreachable")

    async def _take(self) -> _Worker:
        assert self._idle is not None, "start() first"
        while True:
            if (self._idle.empty() and all(self._start_failed)
                    and not any(w.alive for w in self._all)):
                raise WorkersDown  # no use waiting for a worker that may never come
            worker = await self._idle.get()
            if worker.alive:  # one that died idle stays queued until taken, then dropped
                worker.busy = True
                return worker

    def _release(self, worker: _Worker) -> None:
        assert self._idle is not None
        worker.busy = False
        if worker.alive:
            self._idle.put_nowait(worker)
        else:  # its supervisor starts another; ensure the exit it waits for comes
            worker.process.kill()
            worker.conn.close()

    def _finished_late(self, worker: _Worker, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and isinstance(future.exception(), WorkerDied | _NotSent):
            worker.alive = False
        self._release(worker)

    def _ready(self, worker: _Worker) -> None:
        assert self._idle is not None
        worker.ready_at = asyncio.get_running_loop().time()
        worker.alive = True
        self._start_failed[worker.index] = False
        self._idle.put_nowait(worker)

    async def _supervise(self, worker: _Worker) -> None:
        """Start a new process in `worker`'s slot each time the slot's process ends."""
        loop = asyncio.get_running_loop()
        index = worker.index
        failure: str | None = None  # why the slot's newest process did not start
        while True:
            await self._exit_of(worker)
            if self._closing:
                return
            if not worker.busy:
                worker.conn.close()
            up = None if worker.ready_at is None else loop.time() - worker.ready_at
            failed = up is None or up < MIN_UPTIME
            self._failures[index] = self._failures[index] + 1 if failed else 0
            self._start_failed[index] = worker.ready_at is None
            code = await self._exit_code(worker)
            log.error("a masking worker exited; starting another", extra={
                "worker": index, "exit_code": code,
                "signal": signal.Signals(-code).name if code is not None and code < 0 else None,
                "uptime_s": None if up is None else round(up, 1),
                "start_failure": failure, "restart_in_s": self._backoff(index)})
            fresh = await self._restart(index)
            if fresh is None:
                return
            worker, failure = fresh
            if failure is None:
                self._ready(worker)
            elif worker.process.is_alive():  # hung while starting: its exit restarts it
                worker.process.kill()

    async def _restart(self, index: int) -> tuple[_Worker, str | None] | None:
        """A new process in slot `index` once its backoff has passed; None if closing."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._backoff(index))
            try:
                return await loop.run_in_executor(self._starter, self._start_slot, index)
            except Exception as exc:  # no process at all: out of memory, out of pids
                if self._closing:
                    return None
                self._failures[index] += 1
                self._start_failed[index] = True
                log.error("could not start a masking worker", extra={
                    "worker": index, "error_type": type(exc).__name__,
                    "restart_in_s": self._backoff(index)})

    def _backoff(self, index: int) -> float:
        failures = self._failures[index]
        return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(failures - 1, 16)) if failures else 0.0

    async def _exit_of(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        sentinel = worker.process.sentinel

        def ended() -> None:
            worker.alive = False  # no call is handed it from now on
            loop.remove_reader(sentinel)
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(sentinel, ended)
        try:
            await exited
        finally:
            loop.remove_reader(sentinel)

    @staticmethod
    async def _exit_code(worker: _Worker) -> int | None:
        # The sentinel is readable once the process closed its files; the kernel may
        # take a moment more before it can be reaped.
        for _ in range(100):
            code = worker.process.exitcode
            if code is not None:
                return code
            await asyncio.sleep(0.01)
        return None

    def _start_slot(self, index: int) -> tuple[_Worker, str | None] | None:
        """On a thread: a new process in slot `index` and why it is not ready (None:
        it is); None if the pool is closing."""
        with self._lock:
            if self._closing:
                return None
            worker = _Worker(index, *self._spec)
            self._all[index] = worker
        return worker, worker.wait_ready()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            workers = list(self._all)
        for worker in workers:
            worker.stop()
        self._io.shutdown(wait=False)
        self._starter.shutdown(wait=False)
