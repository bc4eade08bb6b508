"""Background work: a failed round does not stop a periodic loop; the block's end stops the work."""

from __future__ import annotations

import asyncio

import anyio

from salesflow.background import repeat
from salesflow.heartbeat import as_task


async def test_a_failed_round_is_tried_again_at_the_next_one() -> None:
    rounds: list[int] = []
    second_round = asyncio.Event()

    async def step() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the first round fails")
        second_round.set()

    async with as_task(repeat(step, every_seconds=0.01, what="test round")):
        with anyio.fail_after(30):
            await second_round.wait()
    assert rounds[:2] == [0, 1]


async def test_the_work_is_cancelled_when_the_block_ends() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with as_task(work()):
        with anyio.fail_after(30):
            await started.wait()
    assert cancelled.is_set()  # awaited before the block returned
