"""Stopping relies on cancelling tasks that wait on Redis: a cancellation must end them.

redis-py 8.0 and 8.1 swallow a cancellation that lands mid-command (the task goes on as if nothing happened),
which left stopping workers hanging; the dependency is pinned below 8 and this keeps it honest. anyio
swallows one that lands as `connect_tcp` settles its connection attempts (a job's first call to Java; seen
as a worker that outlived its stop's bound): stopping cancels a job again until it ends.
"""

from __future__ import annotations

import asyncio

import anyio
from redis.asyncio import Redis

from salesflow.jobs.runtime import RunningJobs

STREAM = "salesflow:test:cancellation"
GROUP = "readers"
BOUND_SECONDS = 10.0  # a cancelled task ends in milliseconds; this only stops a hang


async def _read_forever(redis: Redis) -> None:
    while True:
        await redis.xadd(STREAM, {"data": "x"}, maxlen=100)
        await redis.xreadgroup(GROUP, "reader", {STREAM: ">"}, block=50, count=1)


async def test_a_task_cancelled_mid_redis_command_ends(redis_url: str) -> None:
    async with Redis.from_url(redis_url) as redis:
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        for attempt in range(60):
            reading = asyncio.create_task(_read_forever(redis))
            await asyncio.sleep(attempt % 20 / 1000)  # land at different points of the exchange
            reading.cancel()
            with anyio.fail_after(BOUND_SECONDS):
                await asyncio.gather(reading, return_exceptions=True)
            assert reading.cancelled(), f"attempt {attempt}: the cancellation was swallowed"


async def test_a_job_that_loses_its_cancellation_is_cancelled_again() -> None:
    running = RunningJobs()
    lost = asyncio.Event()

    async def job() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # swallowed, as the library does
            lost.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(job())
    running.tasks.add(task)
    await asyncio.sleep(0)  # the job waits
    with anyio.fail_after(BOUND_SECONDS):
        await running.drain(grace_seconds=0)
    assert lost.is_set() and task.cancelled()
