"""Cache-aside on a real Redis, its in-process fallback, and the switch back when Redis returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from salesflow.data.cache import Cache, MemoryBackend, RedisBackend, cache_key, cache_prefix
from salesflow.models.cache import CachePipeline
from tests.servers import RedisProcess


async def wait_for(condition: Callable[[], bool], deadline_seconds: float = 10.0) -> None:
    """Poll with a deadline: the cache's reconnection is a background loop with nothing to await."""
    async with asyncio.timeout(deadline_seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[Cache]:
    cache = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend(), redis_retry_seconds=0.05)
    yield cache
    await cache.aclose()


def counter() -> tuple[list[int], Callable[[], asyncio.Future[dict[str, int]]]]:
    calls: list[int] = []

    async def compute() -> dict[str, int]:
        calls.append(1)
        await asyncio.sleep(0)  # yield so concurrent callers really overlap
        return {"revenue": 1250}

    return calls, compute  # type: ignore[return-value]


def test_keys_are_built_in_one_place_with_sorted_parameters() -> None:
    key = cache_key(CachePipeline.ANALYTICS, "admin", period="weekly", end="2026-11-26")
    assert key == "sf:v1:analytics:admin:end=2026-11-26&period=weekly"
    assert key.startswith(cache_prefix(CachePipeline.ANALYTICS)) and key.startswith(
        cache_prefix(CachePipeline.ANALYTICS, "admin")
    )
    assert not key.startswith(cache_prefix(CachePipeline.ANALYTICS, "user"))


async def test_second_request_is_a_hit_stored_in_redis(cache: Cache, redis_server: RedisProcess) -> None:
    calls, compute = counter()
    key = cache_key(CachePipeline.ANALYTICS, "admin", period="daily")
    assert await cache.get_or_compute(key, 60, compute) == {"revenue": 1250}
    assert await cache.get_or_compute(key, 60, compute) == {"revenue": 1250}
    assert len(calls) == 1
    assert (cache.stats().hits, cache.stats().misses) == (1, 1)
    with redis_server.client() as client:
        assert client.get(key) == b'{"revenue":1250}'
        assert 0 < client.ttl(key) <= 60


async def test_one_computation_per_key_under_concurrency(cache: Cache) -> None:
    calls, compute = counter()
    key = cache_key(CachePipeline.ANALYTICS, "admin", period="weekly")
    results = await asyncio.gather(*(cache.get_or_compute(key, 60, compute) for _ in range(20)))
    assert results == [{"revenue": 1250}] * 20
    assert len(calls) == 1


async def test_one_computation_per_key_across_processes(redis_url: str) -> None:
    """Two caches (as two processes would have) share the Redis lock: the second waits for the first."""
    first = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend())
    second = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend())
    calls, compute = counter()
    gate = asyncio.Event()

    async def slow() -> dict[str, int]:
        await gate.wait()
        return await compute()

    key = cache_key(CachePipeline.ML, "admin", model="auto")
    task = asyncio.create_task(first.get_or_compute(key, 60, slow))
    await wait_for(lambda: first.stats().misses == 1)
    waiting = asyncio.create_task(second.get_or_compute(key, 60, compute))
    gate.set()
    assert await task == await waiting == {"revenue": 1250}
    assert len(calls) == 1
    await first.aclose()
    await second.aclose()


LOCK_SECONDS = 1.5  # short, so that the computation below outlives it three times over


async def test_a_computation_longer_than_the_lock_keeps_it_and_runs_once(redis_url: str) -> None:
    """The holder renews its lock while it computes (the day's demand batch takes minutes): the other
    process waits for the value instead of computing it again once the first expiry passes."""
    first = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend(), lock_seconds=LOCK_SECONDS)
    second = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend(), lock_seconds=LOCK_SECONDS)
    calls, compute = counter()

    async def long() -> dict[str, int]:
        await asyncio.sleep(3 * LOCK_SECONDS)
        return await compute()

    key = cache_key(CachePipeline.ML, "admin", batch="demand")
    task = asyncio.create_task(first.get_or_compute(key, 60, long))
    await wait_for(lambda: first.stats().misses == 1)
    waiting = second.get_or_compute(key, 60, compute, wait_seconds=60)
    assert await waiting == await task == {"revenue": 1250}
    assert len(calls) == 1
    assert second.stats().misses == 0
    await first.aclose()
    await second.aclose()


async def test_a_lock_is_released_only_by_its_holder(redis_url: str, redis_server: RedisProcess) -> None:
    """After a computation the lock is gone, and a lapsed holder never deletes another process's lock."""
    cache = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend())
    _, compute = counter()
    key = cache_key(CachePipeline.ML, "admin", batch="release")
    await cache.get_or_compute(key, 60, compute)
    with redis_server.client() as client:
        assert not client.exists(f"{key}:lock")
        client.set(f"{key}:lock", b"someone-else", px=60_000)
        assert cache.redis is not None
        stale = cache.redis.lock(key, 60)
        stale.local.token = b"mine"  # a holder whose lock lapsed and was taken by another
        await cache._release_process_lock(stale)
        assert client.get(f"{key}:lock") == b"someone-else"
    await cache.aclose()


async def test_invalidation_scans_only_its_prefix(cache: Cache, redis_server: RedisProcess) -> None:
    _, compute = counter()
    keep = cache_key(CachePipeline.ML, "admin", x=1)
    for key in (cache_key(CachePipeline.ANALYTICS, "admin", p=i) for i in range(1200)):
        await cache.get_or_compute(key, 60, compute)
    await cache.get_or_compute(keep, 60, compute)
    with redis_server.client() as client:
        client.set("someone-else:analytics", b"not ours")
        assert await cache.invalidate(CachePipeline.ANALYTICS) == 1200
        assert client.exists(keep) and client.get("someone-else:analytics") == b"not ours"
        assert not any(k.startswith(b"sf:v1:analytics") for k in client.scan_iter())


async def test_redis_outage_falls_back_to_memory_and_recovers(
    cache: Cache, redis_server: RedisProcess
) -> None:
    _, compute = counter()
    before = cache_key(CachePipeline.ANALYTICS, "admin", period="daily")
    await cache.get_or_compute(before, 60, compute)

    redis_server.stop()
    during = cache_key(CachePipeline.ANALYTICS, "admin", period="weekly")
    assert await cache.get_or_compute(during, 60, compute) == {"revenue": 1250}
    assert cache.stats().backend == "memory" and cache.stats().redis_errors >= 1
    assert await cache.get_or_compute(during, 60, compute) == {"revenue": 1250}  # served from memory
    await cache.invalidate(CachePipeline.ANALYTICS)  # must also reach Redis once it is back

    redis_server.start()
    await wait_for(lambda: cache.stats().backend == "redis")
    with redis_server.client() as client:
        after = cache_key(CachePipeline.ANALYTICS, "admin", period="monthly")
        await cache.get_or_compute(after, 60, compute)
        assert client.exists(after)


async def test_invalidation_during_outage_is_replayed_on_redis(cache: Cache, redis_url: str) -> None:
    """Entries written before an outage must not come back after it if they were invalidated meanwhile."""
    _, compute = counter()
    key = cache_key(CachePipeline.ANALYTICS, "admin", period="quarterly")
    await cache.get_or_compute(key, 60, compute)
    backend = cache.redis
    assert backend is not None
    cache._on_redis_failure(ConnectionError("simulated blip"))  # Redis itself stays up and keeps the key
    await cache.invalidate(CachePipeline.ANALYTICS)
    await wait_for(lambda: cache.stats().backend == "redis")
    assert await backend.get(key) is None


async def test_memory_backend_expires_and_evicts_least_recently_used() -> None:
    now = [1000.0]
    memory = MemoryBackend(max_entries=2, clock=lambda: now[0])
    await memory.set("a", b"1", 10)
    await memory.set("b", b"2", 10)
    assert await memory.get("a") == b"1"  # a is now most recently used
    await memory.set("c", b"3", 10)
    assert await memory.get("b") is None and await memory.get("a") == b"1"
    now[0] += 11
    assert await memory.get("a") is None and len(memory) == 1


async def test_without_redis_the_memory_cache_serves(redis_url: str) -> None:
    cache = Cache(redis=None, memory=MemoryBackend())
    calls, compute = counter()
    key = cache_key(CachePipeline.ANALYTICS, "user", period="daily")
    await cache.get_or_compute(key, 60, compute)
    await cache.get_or_compute(key, 60, compute)
    assert len(calls) == 1 and cache.stats().backend == "memory"
    assert await cache.invalidate(CachePipeline.ANALYTICS) == 1


async def test_after_redis_returns_the_cache_stays_on_it(cache: Cache, redis_server: RedisProcess) -> None:
    """Connections pooled before the outage are dead after it: the cache drops them when Redis is back, so
    the first burst of requests does not fall back to memory again (it once flapped twice in 15 s)."""

    async def burst(tag: str) -> None:
        # Eight at once: eight pooled connections.
        await asyncio.gather(
            *(cache.get_raw(cache_key(CachePipeline.ANALYTICS, "admin", tag=tag, n=n)) for n in range(8))
        )

    await burst("before")
    redis_server.stop()
    await cache.get_raw(cache_key(CachePipeline.ANALYTICS, "admin", tag="during"))
    assert cache.stats().backend == "memory"
    redis_server.start()
    await wait_for(lambda: cache.stats().backend == "redis")
    errors = cache.stats().redis_errors
    for round_ in range(3):
        await burst(f"after-{round_}")
    assert cache.stats().redis_errors == errors and cache.stats().backend == "redis"


async def first_pushed(cache: Cache, key: str) -> bytes:
    """Pop until something is pushed: a pop on Redis blocks half a second at most."""
    while (value := await cache.pop(key, 60.0)) is None:
        pass
    return value


@pytest.mark.parametrize("backend", ["redis", "memory"])
async def test_a_pop_gets_what_another_pushes_in_order_and_gives_up_after_its_timeout(
    redis_url: str, backend: str
) -> None:
    redis = RedisBackend.from_url(redis_url) if backend == "redis" else None
    waiter = Cache(redis=redis, memory=MemoryBackend())
    pusher = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend()) if redis else waiter
    key = cache_key(CachePipeline.ML, "shared", kind="test-signal", backend=backend)
    try:
        assert await waiter.pop(key, 0.05) is None  # nothing pushed: None after the timeout
        popping = asyncio.create_task(first_pushed(waiter, key))
        await asyncio.sleep(0)  # the pop is waiting before the push
        await pusher.push(key, b"3", 60)
        assert await asyncio.wait_for(popping, 30) == b"3"
        await pusher.push(key, b"4", 60)
        await pusher.push(key, b"5", 60)
        assert [await waiter.pop(key, 1.0), await waiter.pop(key, 1.0)] == [b"4", b"5"]
        assert await waiter.pop(key, 0.05) is None
    finally:
        await waiter.aclose()
        if pusher is not waiter:
            await pusher.aclose()
