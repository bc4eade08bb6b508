"""A dead worker's messages on a real Redis: the ones it had taken go back to the queue once its alive key
lapses, each once whoever sweeps; a live worker's stay with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from redis.asyncio import Redis

from salesflow.config import Settings
from salesflow.jobs.runtime import CONSUMER_ALIVE, CONSUMER_GROUP, STREAMS, JobRuntime
from salesflow.models.jobs import JobQueue

LEASE_SECONDS = 2.0  # a loaded machine must not let the live worker's key lapse between its beats
STREAM = STREAMS[JobQueue.INTERACTIVE]


@pytest.fixture
async def runtimes(make_settings: Callable[..., Settings], redis_url: str) -> AsyncIterator[list[JobRuntime]]:
    """Two processes' job runtimes on the private Redis, with a short lease."""
    settings = make_settings(job_backend="redis", redis_url=redis_url, job_lease_seconds=LEASE_SECONDS)
    started = [JobRuntime.from_settings(settings) for _ in range(2)]
    for runtime in started:
        await runtime.startup()
    await started[0].declare_queue()
    yield started
    for runtime in started:
        await runtime.shutdown()


async def _take(redis: Redis, consumer: str, count: int) -> list[bytes]:
    """Read `count` messages as `consumer` would (and not acknowledge them): their data."""
    fetched = await redis.xreadgroup(CONSUMER_GROUP, consumer, {STREAM: ">"}, count=count)
    return [fields[b"data"] for _, messages in fetched for _, fields in messages]


async def _pending(redis: Redis) -> dict[str, int]:
    return {
        consumer["name"].decode(): int(consumer["pending"])
        for consumer in await redis.xinfo_consumers(STREAM, CONSUMER_GROUP)
    }


async def test_a_dead_workers_taken_messages_go_back_to_the_queue_once(
    runtimes: list[JobRuntime], redis_url: str
) -> None:
    first, second = runtimes
    for job_id in ("job-a", "job-b", "job-c"):
        await first.enqueue_report(job_id)
    async with Redis.from_url(redis_url) as redis, second.consuming():
        alive = second.broker.consumer_name  # type: ignore[attr-defined]
        assert await redis.exists(CONSUMER_ALIVE + alive)
        taken_by_the_dead = await _take(redis, "killed-worker", 2)  # it never said it was alive: SIGKILLed
        taken_by_the_live = await _take(redis, alive, 1)

        with anyio.fail_after(30):  # handed back once the dead one has been idle a lease
            moved = 0
            while not moved:
                moved = sum(await asyncio.gather(*(r.hand_back_dead_consumers() for r in runtimes)))
                await anyio.sleep(0.05)
        assert moved == 2  # each once, though both processes swept at the same moment

        assert sorted(await _take(redis, "next-worker", 10)) == sorted(taken_by_the_dead)
        assert (await _pending(redis))[alive] == 1  # the live worker keeps what it runs
        assert taken_by_the_live
        await first.hand_back_dead_consumers()
        assert "killed-worker" not in await _pending(redis)  # a dead worker holding nothing is forgotten
    async with Redis.from_url(redis_url) as redis:
        assert not await redis.exists(CONSUMER_ALIVE + alive)  # a worker that stops says so at once
