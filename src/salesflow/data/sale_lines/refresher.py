"""One value read from a slow or failing source: one refresh at a time, shared by every caller, and the last
known value served (flagged stale) while the source is slow or fails, never a write through this service
missed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

from salesflow.errors import UpstreamError
from salesflow.heartbeat import BackgroundTasks

logger = logging.getLogger(__name__)

T = TypeVar("T")
MIN_RECHECK_SECONDS = 1.0  # while the source fails, how often at most it is tried again in the background

# How to read a fresh value: called when a refresh starts (synchronously, so that what it decides holds
# from then on), it gives the read to await.
Reload = Callable[[], Awaitable[T]]


class WriteCount:
    """Writes through this service: a value read before the latest of them is not served."""

    def __init__(self) -> None:
        self.count = 0


class Refresher(Generic[T]):
    def __init__(
        self,
        name: str,
        *,
        tasks: BackgroundTasks,
        writes: WriteCount,
        clock: Callable[[], datetime],
        wait_seconds: float,
        recheck: Callable[[], Awaitable[object]],
        recheck_seconds: float,
        load_known: Callable[[], Awaitable[T | None]] | None = None,
    ) -> None:
        self.name = name
        self.tasks = tasks
        self.writes = writes
        self.clock = clock
        self.wait_seconds = wait_seconds  # how long a caller with a known value waits for a refresh
        self.recheck = recheck  # reads again while the source is stale
        self.recheck_seconds = max(recheck_seconds, MIN_RECHECK_SECONDS)
        self.load_known = load_known  # the value another process left, read once before the first refresh
        self.value: T | None = None
        self.refreshed_at = 0.0  # monotonic time of the last refresh, or of its failure
        self.stale_since: datetime | None = None  # since when the source fails or is slow; None: fresh
        self._includes_writes = 0
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[T] | None = None
        self._rechecking: asyncio.Task[None] | None = None

    @property
    def behind_writes(self) -> bool:
        return self._includes_writes < self.writes.count

    def seconds_since_refresh(self) -> float:
        return time.monotonic() - self.refreshed_at

    def expire(self) -> None:
        """Refresh on the next read."""
        self.refreshed_at = 0.0

    async def get(
        self,
        plan: Callable[[T | None], Reload[T] | None],
        *,
        covers: Callable[[T], bool] = lambda value: True,
    ) -> T:
        """The value, after the refresh `plan` asks for (None: the known value will do). While a known value
        `covers` what the caller needs, the caller waits for the refresh at most `wait_seconds`, then gets
        the known value (flagged stale) while the refresh goes on; with nothing known that covers it (or
        right after a write through this service) it waits, and the source's failure is its own."""
        while True:
            async with self._lock:
                if self.value is None and self.load_known is not None:
                    self.value = await self.load_known()
                known = self.value
                reload = plan(known)
                if reload is None:
                    assert known is not None  # a refresh is always planned without a value
                    return known
                if self._refreshing is None:
                    self._refreshing = self.tasks.spawn(self._refresh(reload()))
                refreshing = self._refreshing
                must_wait = known is None or not covers(known) or self.behind_writes
            if must_wait:
                fresh = await asyncio.shield(refreshing)
                if covers(fresh) and not self.behind_writes:
                    return fresh
                continue  # that refresh did not read all that is needed, or began before a write
            assert known is not None
            fresh_or_none = await self._briefly(refreshing)
            return known if fresh_or_none is None else fresh_or_none

    async def _refresh(self, reading: Awaitable[T]) -> T:
        writes = self.writes.count
        try:
            fresh = await reading
        except UpstreamError:
            if self.value is None:
                raise
            logger.warning("%s refresh failed; serving the last known", self.name, exc_info=True)
            # Not again before the next refresh is due: a hung source must not stall every request.
            self.refreshed_at = time.monotonic()
            self._mark_stale()
            raise
        finally:
            self._refreshing = None
        self.value = fresh
        self.refreshed_at = time.monotonic()
        self.stale_since = None  # the source answered
        self._includes_writes = writes
        return fresh

    async def _briefly(self, refreshing: asyncio.Task[T]) -> T | None:
        """The refresh's result if it ends within `wait_seconds`; None when it is slower (it goes on) or
        the source failed (already flagged)."""
        done, _ = await asyncio.wait({refreshing}, timeout=self.wait_seconds)
        if refreshing not in done:
            logger.warning("%s refresh is slow; serving the last known", self.name)
            self._mark_stale()
            return None
        error = refreshing.exception()
        if error is None:
            return refreshing.result()
        if isinstance(error, UpstreamError):
            return None
        raise error

    def _mark_stale(self) -> None:
        """Remember since when the last known value is served, and keep the source re-checked in the
        background until it answers: answers served from caches alone never read it, yet must learn that
        it is back."""
        self.stale_since = self.stale_since or self.clock()
        if self._rechecking is None:
            self._rechecking = self.tasks.spawn(self._recheck_until_fresh())

    async def _recheck_until_fresh(self) -> None:
        try:
            while self.stale_since is not None:
                await asyncio.sleep(self.recheck_seconds)
                with contextlib.suppress(UpstreamError):  # still failing: try again later
                    await self.recheck()
        finally:
            self._rechecking = None
