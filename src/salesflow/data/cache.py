"""Cache-aside (AD-03): Redis when configured, a bounded in-process TTL+LRU otherwise or while Redis is down.

Keys are built only by `cache_key`/`cache_prefix`: `sf:v1:<pipeline>:<scope>:<params>`. Values are bytes
(orjson by default). `Cache.get_or_compute` runs one computation per key at a time: an in-process lock per
key, plus a Redis lock across processes (redis-py's `Lock`: an owner token, a short expiry renewed while the
computation runs, so a long one — the day's demand batch — is never run twice, and a dead holder's lapses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import orjson
import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import LockError, RedisError

from salesflow.heartbeat import beating, cancel_and_wait
from salesflow.metrics import CACHE_LOOKUPS
from salesflow.models.cache import CachePipeline

logger = logging.getLogger(__name__)

NAMESPACE = "sf:v1"
T = TypeVar("T")
_REDIS_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
LOCK_SECONDS = 60.0  # a cross-process lock's expiry, renewed every third of it while its holder computes
_LOCK_POLL_SECONDS = 0.05
SOCKET_TIMEOUT_SECONDS = 1.0
MAX_BLOCK_SECONDS = SOCKET_TIMEOUT_SECONDS / 2  # a blocking pop ends well before the socket times out


def cache_key(pipeline: CachePipeline, scope: str, **params: object) -> str:
    """The one place cache keys are built; every parameter that changes the answer must be passed."""
    # Values are quoted: no value (an id from a URL, say) can spell another key's parameters.
    encoded = "&".join(f"{name}={quote(str(params[name]), safe='')}" for name in sorted(params))
    return f"{NAMESPACE}:{pipeline}:{scope}:{encoded}"


def _pipeline(key: str) -> str:
    """The pipeline a key of `cache_key` belongs to."""
    namespaced, _, rest = key.partition(f"{NAMESPACE}:")
    return rest.split(":", 1)[0] if not namespaced and rest else "other"


def cache_prefix(pipeline: CachePipeline | None = None, scope: str | None = None) -> str:
    """Prefix for invalidation: everything, a pipeline, or one scope of a pipeline."""
    parts = [NAMESPACE, *(part for part in (pipeline, scope) if part is not None)]
    return ":".join(parts) + ":"


class MemoryBackend:
    """Bounded in-process TTL + LRU store."""

    def __init__(self, *, max_entries: int = 2048, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lists: dict[str, asyncio.Queue[bytes]] = {}

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._entries[key] = (self.clock() + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def count(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Add one to a counter that lives `window_seconds` from its first count; (count, seconds left)."""
        now = self.clock()
        entry = self._entries.get(key)
        expires_at, count = (
            (entry[0], int(entry[1])) if entry and entry[0] > now else (now + window_seconds, 0)
        )
        self._entries[key] = (expires_at, str(count + 1).encode())
        self._entries.move_to_end(key)
        return count + 1, expires_at - now

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self._entries if key.startswith(prefix)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    async def push(self, key: str, value: bytes) -> None:
        self._lists.setdefault(key, asyncio.Queue()).put_nowait(value)

    async def pop(self, key: str, timeout_seconds: float) -> bytes | None:
        queue = self._lists.setdefault(key, asyncio.Queue())
        try:
            async with asyncio.timeout(timeout_seconds):
                return await queue.get()
        except TimeoutError:
            return None
        finally:
            if queue.empty():  # a list lives only while it holds something: memory stays bounded
                self._lists.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class RedisBackend:
    """Redis through redis-py's asyncio client; every error propagates to `Cache`, which falls back."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> RedisBackend:
        # No client-side retries: a failure must reach `Cache` at once so it can fall back.
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client)

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(key)
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self.client.set(key, value, ex=ttl_seconds)

    async def delete_prefix(self, prefix: str) -> int:
        """SCAN + UNLINK in batches: never KEYS (blocks Redis) nor FLUSHDB (not ours to flush)."""
        deleted = 0
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=_glob_escape(prefix) + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await self.client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await self.client.unlink(*batch)
        return deleted

    async def count(self, key: str, window_seconds: int) -> tuple[int, float]:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds, nx=True)  # the window starts at the first count
            pipe.pttl(key)
            count, _, left_ms = await pipe.execute()
        return int(count), max(int(left_ms), 0) / 1000

    async def push(self, key: str, value: bytes, ttl_seconds: int) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, value)
            pipe.expire(key, ttl_seconds)
            await pipe.execute()

    async def pop(self, key: str, timeout_seconds: float) -> bytes | None:
        # Blocks the connection: never as long as the client's socket timeout, which would end it.
        popped = await self.client.blpop([key], timeout=min(timeout_seconds, MAX_BLOCK_SECONDS))  # type: ignore[misc]
        return None if popped is None else bytes(popped[1])

    async def drop_connections(self) -> None:
        """Close every pooled connection: after a Redis restart they are all dead, though idle."""
        await self.client.connection_pool.disconnect()

    def lock(self, key: str, seconds: float) -> Lock:
        # Not thread-local: the token belongs to the task that took it, whichever thread runs the loop.
        return self.client.lock(f"{key}:lock", timeout=seconds, thread_local=False)

    async def ping(self) -> None:
        await self.client.ping()  # type: ignore[misc]  # redis-py 7 types it for both clients

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass(frozen=True)
class CacheStats:
    """Counters readable by tests and exposed as metrics."""

    hits: int
    misses: int
    redis_errors: int
    backend: Literal["redis", "memory"]
    redis_configured: bool


class Cache:
    """The cache port: cache-aside with Redis failover to memory and back."""

    def __init__(
        self,
        *,
        redis: RedisBackend | None,
        memory: MemoryBackend,
        redis_retry_seconds: float = 5.0,
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        self.lock_seconds = lock_seconds
        self.redis = redis
        self.memory = memory
        self.redis_retry_seconds = redis_retry_seconds
        self._redis_up = redis is not None
        self._hits = 0
        self._misses = 0
        self._redis_errors = 0
        self._key_locks: dict[str, asyncio.Lock] = {}
        self._invalidated_while_down: set[str] = set()
        self._reconnect_task: asyncio.Task[None] | None = None

    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            redis_errors=self._redis_errors,
            backend="redis" if self._redis_up else "memory",
            redis_configured=self.redis is not None,
        )

    async def get_or_compute(
        self,
        key: str,
        ttl_seconds: int,
        compute: Callable[[], Awaitable[T]],
        *,
        encode: Callable[[T], bytes] = orjson.dumps,
        decode: Callable[[bytes], Any] = orjson.loads,
        wait_seconds: float | None = None,
    ) -> T:
        """Return the cached value for `key`, computing and storing it once on a miss. Another process
        computing it is waited for up to `wait_seconds` (default: one lock expiry), then computed here."""
        cached = await self._get(key)
        if cached is not None:
            self._count(key, "hit")
            return decode(cached)  # type: ignore[no-any-return]  # decode is the inverse of encode
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                cached = await self._get(key)  # another task may have filled it while we waited
                if cached is not None:
                    self._count(key, "hit")
                    return decode(cached)  # type: ignore[no-any-return]
                wait = self.lock_seconds if wait_seconds is None else wait_seconds
                cached, held = await self._wait_for_other_process(key, wait)
                if cached is not None:
                    self._count(key, "hit")
                    return decode(cached)  # type: ignore[no-any-return]
                self._count(key, "miss")
                try:
                    async with self._renewing(held):
                        value = await compute()
                    await self._set(key, encode(value), ttl_seconds)
                finally:
                    await self._release_process_lock(held)
                return value
        finally:
            if not lock.locked() and self._key_locks.get(key) is lock:
                del self._key_locks[key]

    def _count(self, key: str, result: Literal["hit", "miss"]) -> None:
        if result == "hit":
            self._hits += 1
        else:
            self._misses += 1
        CACHE_LOOKUPS.labels(_pipeline(key), result).inc()

    async def get_raw(self, key: str) -> bytes | None:
        """The stored bytes of `key`, if any (no counters: for values that are not computed results)."""
        return await self._get(key)

    async def set_raw(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._set(key, value, ttl_seconds)

    async def push(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Append to a list another process waits on with `pop` (this process alone while Redis is away)."""
        await self._either(
            lambda redis: redis.push(key, value, ttl_seconds), lambda: self.memory.push(key, value)
        )

    async def pop(self, key: str, timeout_seconds: float) -> bytes | None:
        """The first value of a list, waiting for one: None after `timeout_seconds` (with Redis, at most
        `MAX_BLOCK_SECONDS`: a caller waiting longer asks again)."""
        return await self._either(
            lambda redis: redis.pop(key, timeout_seconds), lambda: self.memory.pop(key, timeout_seconds)
        )

    async def count(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Add one to a counter shared by every process (in this process alone while Redis is away); the
        counter lives `window_seconds` from its first count. Returns (count, seconds left in the window)."""
        return await self._either(
            lambda redis: redis.count(key, window_seconds), lambda: self.memory.count(key, window_seconds)
        )

    async def invalidate(self, pipeline: CachePipeline | None = None, scope: str | None = None) -> int:
        """Delete every cached result of `pipeline` (and `scope`), or all when None; how many were removed."""
        prefix = cache_prefix(pipeline, scope)
        removed = await self.memory.delete_prefix(prefix)
        if self.redis is not None:
            if self._redis_up:
                try:
                    return removed + await self.redis.delete_prefix(prefix)
                except _REDIS_FAILURES as exc:
                    self._on_redis_failure(exc)
            # Redis may hold entries written before it went down: clear them once it is back.
            self._invalidated_while_down.add(prefix)
        return removed

    async def aclose(self) -> None:
        if self._reconnect_task is not None:
            await cancel_and_wait([self._reconnect_task])
        if self.redis is not None:
            await self.redis.aclose()

    async def _get(self, key: str) -> bytes | None:
        return await self._either(lambda redis: redis.get(key), lambda: self.memory.get(key))

    async def _set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._either(
            lambda redis: redis.set(key, value, ttl_seconds), lambda: self.memory.set(key, value, ttl_seconds)
        )

    async def _either(
        self, on_redis: Callable[[RedisBackend], Awaitable[T]], in_memory: Callable[[], Awaitable[T]]
    ) -> T:
        """On Redis while it is up; in this process when it is not, or fails now (it is then re-checked in
        the background)."""
        if self.redis is not None and self._redis_up:
            try:
                return await on_redis(self.redis)
            except _REDIS_FAILURES as exc:
                self._on_redis_failure(exc)
        return await in_memory()

    async def _wait_for_other_process(
        self, key: str, wait_seconds: float
    ) -> tuple[bytes | None, Lock | None]:
        """Take the cross-process lock (returned), or wait up to `wait_seconds` for the process holding it to
        store the value (returned); after that, or without Redis, neither: compute here."""
        if self.redis is None or not self._redis_up:
            return None, None
        try:
            lock = self.redis.lock(key, self.lock_seconds)
            deadline = time.monotonic() + wait_seconds
            while not await lock.acquire(blocking=False):
                value = await self.redis.get(key)
                if value is not None or time.monotonic() > deadline:
                    return value, None
                await asyncio.sleep(_LOCK_POLL_SECONDS)
            # Taken just after its holder stored the value and let go: the value is there.
            value = await self.redis.get(key)
            if value is not None:
                await self._release_process_lock(lock)
                return value, None
        except _REDIS_FAILURES as exc:
            self._on_redis_failure(exc)
            return None, None
        return None, lock

    def _renewing(self, held: Lock | None) -> contextlib.AbstractAsyncContextManager[None]:
        """Renew the held lock every third of its expiry while the computation runs."""
        if held is None:
            return contextlib.nullcontext()

        async def renew() -> bool:
            try:
                await held.reacquire()
            except LockError:  # it lapsed (the loop was blocked): another process may compute too
                logger.warning("cache lock lapsed while computing", extra={"lock": held.name})
                return False
            except _REDIS_FAILURES as exc:
                self._on_redis_failure(exc)
                return False
            return True

        return beating(renew, self.lock_seconds / 3)

    async def _release_process_lock(self, held: Lock | None) -> None:
        if held is None:
            return
        try:
            await held.release()
        except LockError:  # it lapsed, and may be another's now: not ours to delete
            pass
        except _REDIS_FAILURES as exc:
            self._on_redis_failure(exc)

    def _on_redis_failure(self, exc: BaseException) -> None:
        self._redis_errors += 1
        if not self._redis_up:
            return
        self._redis_up = False
        logger.warning(
            "redis unavailable; serving from the in-process cache",
            extra={"error": type(exc).__name__},
        )
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        if self.redis is None:
            return
        while True:
            await asyncio.sleep(self.redis_retry_seconds)
            try:
                # Connections pooled before the outage would each fail once more: start afresh.
                await self.redis.drop_connections()
                await self.redis.ping()
                for prefix in sorted(self._invalidated_while_down):
                    await self.redis.delete_prefix(prefix)
            except _REDIS_FAILURES:
                continue
            self._invalidated_while_down.clear()
            self._redis_up = True
            logger.info("redis is back; using it again")
            return


def _glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters so a prefix matches literally."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
