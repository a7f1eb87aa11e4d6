"""WorkerProcesses on its own: a reply always reaches the call that asked for it."""

from __future__ import annotations

import asyncio
import contextlib

from phimask.worker_processes import WorkerProcesses
from tests.server import echo_worker


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
