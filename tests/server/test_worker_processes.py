"""WorkerProcesses on its own, and under `phimask serve`: a reply always reaches the call
that asked for it, and a dead worker is replaced at once, without a request."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import orjson
import pytest

from bench.chaos import worker_pids
from phimask.worker_processes import WorkerDied, WorkerProcesses, WorkersDown
from tests.server import echo_worker
from tests.server.harness import phimask_server, request


def _workers() -> list[int]:
    """This process's live masking workers (spawned children, zombies left out)."""
    return worker_pids(os.getpid())


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


def _replaced(victim: int, count: int) -> Callable[[], bool]:
    def check() -> bool:
        now = _workers()
        return victim not in now and len(now) == count
    return check


@contextlib.contextmanager
def _worker_logs() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger, handler = logging.getLogger("phimask.workers"), Keep()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _deaths(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.getMessage().startswith("a masking worker exited")]


def test_a_cancelled_call_never_hands_its_reply_to_another() -> None:
    async def scenario() -> list[tuple[str, str]]:
        pool = WorkerProcesses(2, echo_worker.setup, None, echo_worker.echo_after)
        await pool.start()
        try:
            mismatches: list[tuple[str, str]] = []
            for round_ in range(3):
                slow = asyncio.ensure_future(pool.call(f"slow{round_}", 0.6))
                await asyncio.sleep(0.1)
                slow.cancel()  # the caller left; its worker is still busy
                with contextlib.suppress(asyncio.CancelledError):
                    await slow
                tags = [f"fast{round_}-{i}" for i in range(6)]
                replies = await asyncio.gather(*(pool.call(t, 0.05) for t in tags))
                mismatches += [(t, r) for t, r in zip(tags, replies, strict=True) if t != r]
                assert pool.idle <= 2
            await asyncio.sleep(0.7)
            assert pool.idle == 2  # the busy worker came back once it had answered
            return mismatches
        finally:
            pool.close()

    assert asyncio.run(scenario()) == []


def test_a_killed_idle_worker_is_replaced_without_a_request() -> None:
    async def scenario() -> None:
        pool = WorkerProcesses(2, echo_worker.setup, None, echo_worker.pid_after)
        await pool.start()
        try:
            with _worker_logs() as logs:
                victim = _workers()[-1]
                os.kill(victim, signal.SIGKILL)
                await _until(lambda: _replaced(victim, 2)() and pool.idle == 2,
                             "a new worker is up")
            after = _workers()
            # Both take the first call they are given, the new one included.
            replies = await asyncio.gather(*(pool.call(f"t{i}", 0.3) for i in range(2)))
            assert [tag for tag, _ in replies] == ["t0", "t1"]
            assert {pid for _, pid in replies} == set(after)
            [death] = _deaths(logs)
            assert (death.exit_code, death.signal) == (-signal.SIGKILL, "SIGKILL")  # type: ignore[attr-defined]
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_killed_busy_worker_fails_its_call_at_once_and_the_rest_go_to_the_live_one(
        tmp_path: Path) -> None:
    marker, pidfile = tmp_path / "slow", tmp_path / "busy.pid"

    async def scenario() -> None:
        pool = WorkerProcesses(2, echo_worker.slow_start_if, str(marker), echo_worker.pid_after)
        await pool.start()
        try:
            marker.touch()  # from now on a worker takes SLOW_START seconds to start
            busy = asyncio.ensure_future(pool.call("busy", 30.0, str(pidfile)))
            await _until(lambda: pidfile.exists() and pidfile.read_text() != "", "busy")
            victim = int(pidfile.read_text())
            [survivor] = [pid for pid in _workers() if pid != victim]
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(WorkerDied):
                await busy
            # Answered when its worker died, not once a new one had started.
            assert time.monotonic() - killed < echo_worker.SLOW_START / 2
            # The replacement is still starting: every call goes to the live worker.
            served = [await pool.call(f"n{i}", 0.05) for i in range(10)]
            assert served == [(f"n{i}", survivor) for i in range(10)]
            assert time.monotonic() - killed < echo_worker.SLOW_START
            await _until(lambda: _replaced(victim, 2)() and pool.idle == 2, "a new worker is up")
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_worker_that_cannot_start_is_restarted_with_backoff(tmp_path: Path) -> None:
    marker = tmp_path / "fail"

    async def scenario() -> None:
        pool = WorkerProcesses(1, echo_worker.fail_start_if, str(marker), echo_worker.echo_after)
        await pool.start()
        try:
            with _worker_logs() as logs:
                marker.touch()  # every new worker fails in setup
                os.kill(_workers()[0], signal.SIGKILL)
                await _until(lambda: len(_deaths(logs)) >= 3, "three deaths")
                deaths = _deaths(logs)[:3]
                delays = [d.restart_in_s for d in deaths]  # type: ignore[attr-defined]
                assert delays == [0.5, 1.0, 2.0]
                # Each start waited out its delay: no busy loop, however fast it fails.
                gaps = [b.created - a.created for a, b in itertools.pairwise(deaths)]
                assert all(gap >= d for gap, d in zip(gaps, delays[:2], strict=True)), gaps
                assert deaths[0].signal == "SIGKILL"  # type: ignore[attr-defined]
                assert [d.start_failure for d in deaths[1:]] == [  # type: ignore[attr-defined]
                    "setup raised ValueError"] * 2
                # Nothing is up and nothing starts: a call is refused, not kept waiting.
                with pytest.raises(WorkersDown):
                    await asyncio.wait_for(pool.call("refused", 0.0), 2.0)
                marker.unlink()
                await _until(lambda: pool.idle == 1, "a worker starts again")
                assert await pool.call("back", 0.0) == "back"
        finally:
            pool.close()

    asyncio.run(scenario())


def test_close_while_a_replacement_starts_leaves_no_process_and_starts_none(
        tmp_path: Path) -> None:
    marker = tmp_path / "slow"

    async def scenario() -> None:
        pool = WorkerProcesses(2, echo_worker.slow_start_if, str(marker), echo_worker.echo_after)
        await pool.start()
        with _worker_logs() as logs:
            marker.touch()
            victim = _workers()[-1]
            os.kill(victim, signal.SIGKILL)
            await _until(_replaced(victim, 2), "a new worker is starting")
            assert pool.idle == 1  # it takes SLOW_START seconds to be ready
            closing = time.monotonic()
            pool.close()
            assert time.monotonic() - closing < echo_worker.SLOW_START  # not waited for
            assert _workers() == []
            await asyncio.sleep(1.5)  # the supervisors see their workers end
            assert _workers() == []
            assert len(_deaths(logs)) == 1  # the kill; the stops are no deaths

    asyncio.run(scenario())


def test_serve_replaces_a_killed_worker_at_once_and_routes_around_a_dead_one(
        tmp_path: Path) -> None:
    batch = request(*[orjson.dumps({"msg": f"visit {i}: call 617-555-0142"}) for i in range(200)])
    with phimask_server(tmp_path, "--workers", "2") as server, server.channel() as channel:
        stub = server.stub(channel)
        pids = worker_pids(server.process.pid)
        assert len(pids) == 2
        seen = set(pids)

        def replaced(victim: int) -> bool:
            now = worker_pids(server.process.pid)
            seen.update(now)
            return victim not in now and len(now) == 2

        os.kill(pids[1], signal.SIGKILL)
        _wait(lambda: replaced(pids[1]), "a new worker exists, no request sent")
        futures = [stub.Transform.future(batch, timeout=30) for _ in range(4)]
        assert all(len(f.result().records) == 200 for f in futures)

        # The other one, the oldest, dies; calls sent right after it is gone are
        # served, none answered UNAVAILABLE, while its replacement starts.
        os.kill(pids[0], signal.SIGKILL)
        _wait(lambda: _dead(pids[0]), "the worker is dead")
        for _ in range(6):
            assert len(stub.Transform(batch, timeout=30).records) == 200

        # Drain while the replacement may still be starting: nothing respawns, exit 0.
        _wait(lambda: replaced(pids[0]), "a new worker exists")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert all(_dead(pid) for pid in seen), seen
        with pytest.raises(grpc.RpcError):
            stub.Transform(batch, timeout=2)
    deaths = [line for line in server.log_lines if "a masking worker exited" in line]
    assert len(deaths) == 2 and all('"signal":"SIGKILL"' in line for line in deaths), deaths
    assert "617-555-0142" not in server.logs()
