"""`SaleLineCache`: the policy's reads of the source, through one refresher for the lines and one for the
products, shared with other processes through the snapshot."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import anyio
import pandas as pd

from salesflow.data.cache import Cache
from salesflow.data.sale_lines.frames import (
    Clock,
    LinesState,
    days_between,
    merge_tail,
    utc_now,
    with_days,
)
from salesflow.data.sale_lines.policy import RefreshKind, RefreshPolicy
from salesflow.data.sale_lines.refresher import Refresher, Reload, WriteCount
from salesflow.data.sale_lines.snapshot import SharedSnapshot
from salesflow.data.sources.base import DataSource
from salesflow.heartbeat import BackgroundTasks

T = TypeVar("T")


class SaleLineCache:
    """Sale lines and products for the pipelines, read from a `DataSource` as rarely as possible."""

    def __init__(
        self,
        source: DataSource,
        cache: Cache,
        *,
        java_tz: ZoneInfo,
        business_tz: ZoneInfo,
        history_days: int = 400,
        max_history_days: int = 800,
        refresh_seconds: float = 15.0,
        refresh_wait_seconds: float = 1.0,
        full_reload_seconds: float = 3600.0,
        clock: Clock = utc_now,
    ) -> None:
        self.source = source
        self.java_tz = java_tz
        self.business_tz = business_tz
        self.clock = clock
        self.policy = RefreshPolicy(
            history_days=history_days,
            max_history_days=max(max_history_days, history_days),
            refresh_seconds=refresh_seconds,
            refresh_wait_seconds=refresh_wait_seconds,
            full_reload_seconds=full_reload_seconds,
        )
        self.fetches = 0  # reads of the source's sale lines, for tests and metrics
        self._tasks = BackgroundTasks()
        self._writes = WriteCount()
        self._full_reload_asked = False
        self._snapshot = SharedSnapshot(cache, self._tasks)
        self._lines: Refresher[LinesState] = self._refresher(
            "sale lines", self._recheck_lines, load_known=self._read_snapshot
        )
        self._products: Refresher[pd.DataFrame] = self._refresher("products", self.products)

    @property
    def stale_since(self) -> datetime | None:
        """Since when answers use the last lines or products known because the source fails; None: fresh."""
        known = [when for when in (self._lines.stale_since, self._products.stale_since) if when is not None]
        return min(known) if known else None

    def today(self) -> date:
        """Today in the business time zone."""
        return self.clock().astimezone(self.business_tz).date()

    async def window(self, first_day: date, last_day: date) -> pd.DataFrame:
        """Lines whose business day is in `first_day..last_day` (inclusive), sorted by time."""
        since = datetime.combine(first_day - timedelta(days=1), datetime.min.time())  # covers any tz offset
        if since < self._start_of_history(self.policy.max_history_days):  # never kept: read it alone
            end = datetime.combine(last_day + timedelta(days=2), datetime.min.time())
            lines = await self.source.sale_lines(since, end)
            frame = await anyio.to_thread.run_sync(with_days, lines, self.java_tz, self.business_tz)
        else:
            frame = (await self._lines_since(since)).lines
        return days_between(frame, first_day, last_day)

    async def products(self) -> pd.DataFrame:
        """Every product, refreshed at most once per `SALES_REFRESH_SECONDS` (a slow refresh is waited for
        `refresh_wait_seconds` when products are known, as for the lines)."""
        return await self._products.get(self._plan_products)

    def invalidate(self, *, full: bool = False) -> None:
        """Refresh on the next read (after a write through this service); `full` when the write may be
        dated before the last refresh (an import of historical sales), which a tail refresh would miss."""
        self._lines.expire()
        self._products.expire()
        self._full_reload_asked = self._full_reload_asked or full
        self._writes.count += 1

    async def aclose(self) -> None:
        await self._tasks.aclose()

    def _refresher(
        self,
        name: str,
        recheck: Callable[[], Awaitable[object]],
        *,
        load_known: Callable[[], Awaitable[T | None]] | None = None,
    ) -> Refresher[T]:
        return Refresher(
            name,
            tasks=self._tasks,
            writes=self._writes,
            clock=self.clock,
            wait_seconds=self.policy.refresh_wait_seconds,
            recheck=recheck,
            recheck_seconds=self.policy.refresh_seconds,
            load_known=load_known,
        )

    def _plan_products(self, known: pd.DataFrame | None) -> Reload[pd.DataFrame] | None:
        due = self.policy.products_due(
            known=known is not None,
            seconds_since_refresh=self._products.seconds_since_refresh(),
            behind_writes=self._products.behind_writes,
        )
        return self.source.products if due else None

    async def _lines_since(self, since: datetime) -> LinesState:
        """The lines since `since`, after the refresh the policy asks for."""
        return await self._lines.get(
            functools.partial(self._plan_lines, since=since), covers=lambda state: since >= state.since
        )

    async def _recheck_lines(self) -> None:
        if self._lines.value is not None:
            await self._lines_since(self._lines.value.since)

    def _plan_lines(self, state: LinesState | None, *, since: datetime) -> Reload[LinesState] | None:
        now = self._java_now()
        kind = self.policy.lines_due(
            state,
            since,
            now,
            full_reload_asked=self._full_reload_asked,
            seconds_since_refresh=self._lines.seconds_since_refresh(),
            behind_writes=self._lines.behind_writes,
        )
        if kind is None:
            return None
        return functools.partial(self._start_reading, kind, state, since, now)

    def _start_reading(
        self, kind: RefreshKind, state: LinesState | None, since: datetime, now: datetime
    ) -> Awaitable[LinesState]:
        if kind == "full":
            self._full_reload_asked = False  # a full reload asked for from now on needs another one
        if kind == "full" or state is None:
            return self._full_load(min(self._start_of_history(self.policy.history_days), since), now)
        if kind == "extend":
            return self._full_load(since, now)
        return self._incremental(state, now)

    async def _full_load(self, since: datetime, now: datetime) -> LinesState:
        self.fetches += 1
        lines = await self.source.sale_lines(since, now + timedelta(days=1))
        frame = await anyio.to_thread.run_sync(with_days, lines, self.java_tz, self.business_tz)
        state = LinesState(lines=frame, since=since, refreshed_at=now, loaded_at=now)
        self._snapshot.share(state)
        return state

    async def _incremental(self, state: LinesState, now: datetime) -> LinesState:
        """Replace the tail since the start of the day before the last refresh with a fresh read."""
        self.fetches += 1
        tail_start = datetime.combine(state.refreshed_at.date() - timedelta(days=1), datetime.min.time())
        fresh = await self.source.sale_lines(tail_start, now + timedelta(days=1))
        merged = await anyio.to_thread.run_sync(self._merge, state.lines, fresh, tail_start)
        since = max(state.since, self._start_of_history(self.policy.max_history_days))
        if since > state.since:
            merged = merged.iloc[int(merged["sold_at"].searchsorted(since)) :].reset_index(drop=True)
        new_state = LinesState(lines=merged, since=since, refreshed_at=now, loaded_at=state.loaded_at)
        self._snapshot.share_tail(new_state, new_lines=len(fresh))
        return new_state

    def _merge(self, lines: pd.DataFrame, fresh: pd.DataFrame, tail_start: datetime) -> pd.DataFrame:
        return merge_tail(lines, with_days(fresh, self.java_tz, self.business_tz), tail_start)

    async def _read_snapshot(self) -> LinesState | None:
        return await self._snapshot.read(
            now=self._java_now(), max_age_seconds=self.policy.full_reload_seconds
        )

    def _start_of_history(self, days: int) -> datetime:
        return self.policy.start_of_history(self._java_now().date(), days)

    def _java_now(self) -> datetime:
        return self.clock().astimezone(self.java_tz).replace(tzinfo=None)
