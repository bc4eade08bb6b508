"""Columnar cache of sale lines and products, shared by every pipeline.

Java's history has no pagination, so reading it per request re-downloads tens of MB. This cache keeps
the lines of the last `SALES_HISTORY_DAYS` in memory, sorted by time, with each line's business day
(`BUSINESS_TZ`) precomputed:

- cold: load the whole `SALES_HISTORY_DAYS` (from midnight, a day more for time-zone offsets) once, which
  serves every pipeline of a request burst, the ML pipelines' full history included;
- a window older than that extends what is kept back to its start in one read (Java's history always runs
  to now), up to `SALES_MAX_HISTORY_DAYS`; the next full reload drops the extension again;
- warm: at most one incremental refresh per `SALES_REFRESH_SECONDS`: fetch the lines since the start of the
  day before the last refresh and replace that tail (merge by time range and sale id);
- a full reload every `SALES_FULL_RELOAD_SECONDS` picks up edits and deletions;
- with Redis, the loaded lines are shared as an Arrow snapshot, so other processes start warm.

Java stays the source of truth: when a refresh fails, or takes longer than `SALES_REFRESH_WAIT_SECONDS`, the
last lines are served (logged, and flagged through `stale_since`); when there are none, the caller waits and a
failure propagates. Concurrent callers share one fetch, so a request burst reads the source once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import anyio
import numpy as np
import pandas as pd
import pyarrow as pa

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sources.base import SALE_LINE_COLUMNS, DataSource, conform
from salesflow.errors import UpstreamError
from salesflow.models.cache import CachePipeline

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SNAPSHOT_KEY = cache_key(CachePipeline.LINES, "shared", kind="snapshot")
_SNAPSHOT_TTL_SECONDS = 24 * 3600
_SNAPSHOT_MIN_INTERVAL_SECONDS = 60.0
RefreshKind = Literal["full", "extend", "tail"]
T = TypeVar("T")
MIN_RECHECK_SECONDS = 1.0  # while the source fails, how often at most it is tried again in the background


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LinesState:
    """The cached lines and what they cover (naive Java-local times)."""

    lines: pd.DataFrame  # SALE_LINE_COLUMNS + `day` (business day, datetime64[s]), sorted by sold_at
    since: datetime  # every line with sold_at >= since is present
    refreshed_at: datetime  # Java-local time of the last fetch
    loaded_at: datetime  # Java-local time of the last full load


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
        self.cache = cache
        self.java_tz = java_tz
        self.business_tz = business_tz
        self.history_days = history_days
        self.max_history_days = max(max_history_days, history_days)
        self.refresh_seconds = refresh_seconds
        self.refresh_wait_seconds = refresh_wait_seconds
        self.full_reload_seconds = full_reload_seconds
        self.clock = clock
        self.fetches = 0  # reads of the source's sale lines, for tests and metrics
        self._state: LinesState | None = None
        self._refreshed_monotonic = 0.0
        self._products: pd.DataFrame | None = None
        self._products_monotonic = 0.0
        self._lines_lock = asyncio.Lock()
        self._products_lock = asyncio.Lock()
        self._snapshot_written = 0.0
        self._full_reload_due = False
        self._background: set[asyncio.Task[Any]] = set()
        # Since when the lines, and the products, served are the last known, the source failing (None: fresh).
        self._lines_stale_since: datetime | None = None
        self._products_stale_since: datetime | None = None
        self._rechecking: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[LinesState] | None = None
        self._products_refreshing: asyncio.Task[pd.DataFrame] | None = None
        # Writes through this service, and how many of them the lines and the products last read include:
        # a read waits for data that includes every write.
        self._writes = 0
        self._lines_include_writes = 0
        self._products_include_writes = 0

    @property
    def stale_since(self) -> datetime | None:
        """Since when answers use the last lines or products known because the source fails; None: fresh."""
        known = [when for when in (self._lines_stale_since, self._products_stale_since) if when is not None]
        return min(known) if known else None

    def _mark_stale(self, which: Literal["lines", "products"]) -> None:
        """Remember since when `which` is served from the last known data, and keep the source re-checked in
        the background until it answers: answers served from the cache alone never read the lines, yet
        must learn that the source is back."""
        now = self.clock()
        if which == "lines":
            self._lines_stale_since = self._lines_stale_since or now
        else:
            self._products_stale_since = self._products_stale_since or now
        if self._rechecking is None:
            self._rechecking = self._spawn(self._recheck_until_fresh())

    async def _recheck_until_fresh(self) -> None:
        try:
            while self.stale_since is not None:
                await asyncio.sleep(max(self.refresh_seconds, MIN_RECHECK_SECONDS))
                with contextlib.suppress(UpstreamError):  # still failing: try again later
                    if self._lines_stale_since is not None and self._state is not None:
                        await self._lines_since(self._state.since)
                    if self._products_stale_since is not None:
                        await self.products()
        finally:
            self._rechecking = None

    def today(self) -> date:
        """Today in the business time zone."""
        return self.clock().astimezone(self.business_tz).date()

    async def window(self, first_day: date, last_day: date) -> pd.DataFrame:
        """Lines whose business day is in `first_day..last_day` (inclusive), sorted by time."""
        since = datetime.combine(first_day - timedelta(days=1), datetime.min.time())  # covers any tz offset
        if since < self._start_of_history(self.max_history_days):  # beyond what is ever kept: read it alone
            end = datetime.combine(last_day + timedelta(days=2), datetime.min.time())
            lines = await self.source.sale_lines(since, end)
            frame = await anyio.to_thread.run_sync(self._with_days, lines)
        else:
            frame = (await self._lines_since(since)).lines
        return days_between(frame, first_day, last_day)

    def _start_of_history(self, days: int) -> datetime:
        """Midnight (Java-local) `days` days before today, and a day more for business-zone offsets."""
        return datetime.combine(self._java_now().date() - timedelta(days=days + 1), datetime.min.time())

    async def products(self) -> pd.DataFrame:
        """Every product, refreshed at most once per `SALES_REFRESH_SECONDS` (a slow refresh is waited for
        `refresh_wait_seconds` when products are known, as for the lines)."""
        while True:
            async with self._products_lock:
                known = self._products
                if (
                    known is not None
                    and time.monotonic() - self._products_monotonic < self.refresh_seconds
                    and self._products_include_writes == self._writes
                ):
                    return known
                if self._products_refreshing is None:
                    self._products_refreshing = self._spawn(self._refresh_products())
                refreshing = self._products_refreshing
            if known is not None and self._products_include_writes == self._writes:
                fresh = await self._briefly(refreshing, "products")
                return known if fresh is None else fresh
            fresh = await asyncio.shield(refreshing)  # its failure is the caller's: no products known
            if self._products_include_writes == self._writes:
                return fresh
            # That refresh began before a write through this service: the next one includes it.

    async def _refresh_products(self) -> pd.DataFrame:
        writes = self._writes
        try:
            products = await self.source.products()
        except UpstreamError:
            if self._products is None:
                raise
            logger.warning("products refresh failed; serving the last products")
            self._products_monotonic = time.monotonic()  # not again before the next refresh
            self._mark_stale("products")
            raise
        finally:
            self._products_refreshing = None
        self._products = products
        self._products_monotonic = time.monotonic()
        self._products_stale_since = None
        self._products_include_writes = writes
        return products

    def invalidate(self, *, full: bool = False) -> None:
        """Refresh on the next read (after a write through this service); `full` when the write may be
        dated before the last refresh (an import of historical sales), which a tail refresh would miss."""
        self._refreshed_monotonic = 0.0
        self._products_monotonic = 0.0
        self._full_reload_due = self._full_reload_due or full
        self._writes += 1

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _lines_since(self, since: datetime) -> LinesState:
        """The lines since `since`, refreshed when due. One refresh runs at a time, in a task of its own:
        while known lines cover the window, a caller waits for it at most `refresh_wait_seconds`, then is
        answered from the last known lines (flagged stale) while the refresh goes on; with nothing known that
        covers the window (or right after a write through this service), it waits for the refresh."""
        while True:
            async with self._lines_lock:
                state = self._state = self._state or await self._read_snapshot()
                now = self._java_now()
                refresh = self._refresh_due(state, since, now)
                if refresh is None:
                    assert state is not None  # a refresh is always due without lines
                    return state
                if self._refreshing is None:
                    self._refreshing = self._start(refresh, state, since, now)
                refreshing = self._refreshing
                must_wait = state is None or since < state.since or self._lines_include_writes < self._writes
            if must_wait:  # its failure is the caller's: nothing known covers the window
                loaded = await asyncio.shield(refreshing)
                if since >= loaded.since and self._lines_include_writes == self._writes:
                    return loaded
                continue  # that refresh did not read all the window, or began before a write
            assert state is not None
            fresh = await self._briefly(refreshing, "lines")
            return state if fresh is None else fresh

    def _refresh_due(self, state: LinesState | None, since: datetime, now: datetime) -> RefreshKind | None:
        # Cold: load everything kept, so that every pipeline of a burst is served. A full reload (periodic, or
        # after a write of dated sales) starts there too, dropping any extension.
        if (
            state is None
            or self._full_reload_due
            or (now - state.loaded_at).total_seconds() >= self.full_reload_seconds
        ):
            return "full"
        if since < state.since:  # an older window: keep its lines too, one read for all its kind
            return "extend"
        if (
            time.monotonic() - self._refreshed_monotonic >= self.refresh_seconds
            or self._lines_include_writes < self._writes
        ):
            return "tail"
        return None

    def _start(
        self, refresh: RefreshKind, state: LinesState | None, since: datetime, now: datetime
    ) -> asyncio.Task[LinesState]:
        if refresh == "full":
            self._full_reload_due = False
        return self._spawn(self._refresh(refresh, state, since, now))

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(_forget)
        task.add_done_callback(self._background.discard)
        return task

    async def _briefly(self, refreshing: asyncio.Task[T], which: Literal["lines", "products"]) -> T | None:
        """The refresh's result if it ends within `refresh_wait_seconds`; None when it is slower (it goes on;
        the answer uses the last known data, flagged stale) or the source failed (already flagged)."""
        done, _ = await asyncio.wait({refreshing}, timeout=self.refresh_wait_seconds)
        if refreshing not in done:
            logger.warning("%s refresh is slow; serving the last known", which)
            self._mark_stale(which)
            return None
        error = refreshing.exception()
        if error is None:
            return refreshing.result()
        if isinstance(error, UpstreamError):
            return None
        raise error

    async def _refresh(
        self, refresh: RefreshKind, state: LinesState | None, since: datetime, now: datetime
    ) -> LinesState:
        writes = self._writes
        try:
            if refresh == "full" or state is None:
                fresh = await self._full_load(min(self._start_of_history(self.history_days), since), now)
            elif refresh == "extend":
                fresh = await self._full_load(since, now)
            else:
                fresh = await self._incremental(state, now)
        except UpstreamError:
            if self._state is None:
                raise
            logger.warning("sale lines refresh failed; serving the last lines", exc_info=True)
            # Not again before the next refresh is due: a hung source must not stall every request.
            self._refreshed_monotonic = time.monotonic()
            self._mark_stale("lines")
            raise
        finally:
            self._refreshing = None
        self._state = fresh
        self._lines_stale_since = None  # the source answered: the lines are fresh again
        self._lines_include_writes = writes
        return fresh

    async def _full_load(self, since: datetime, now: datetime) -> LinesState:
        self.fetches += 1
        lines = await self.source.sale_lines(since, now + timedelta(days=1))
        frame = await anyio.to_thread.run_sync(self._with_days, lines)
        self._refreshed_monotonic = time.monotonic()
        state = LinesState(lines=frame, since=since, refreshed_at=now, loaded_at=now)
        self._share(state)
        return state

    async def _incremental(self, state: LinesState, now: datetime) -> LinesState:
        """Replace the tail since the start of the day before the last refresh with a fresh read."""
        self.fetches += 1
        tail_start = datetime.combine(state.refreshed_at.date() - timedelta(days=1), datetime.min.time())
        fresh = await self.source.sale_lines(tail_start, now + timedelta(days=1))
        merged = await anyio.to_thread.run_sync(self._merge, state.lines, fresh, tail_start)
        since = max(state.since, self._start_of_history(self.max_history_days))
        if since > state.since:
            merged = merged.iloc[int(merged["sold_at"].searchsorted(since)) :].reset_index(drop=True)
        self._refreshed_monotonic = time.monotonic()
        new_state = LinesState(lines=merged, since=since, refreshed_at=now, loaded_at=state.loaded_at)
        if len(fresh) and time.monotonic() - self._snapshot_written >= _SNAPSHOT_MIN_INTERVAL_SECONDS:
            self._share(new_state)
        return new_state

    def _merge(self, lines: pd.DataFrame, fresh: pd.DataFrame, tail_start: datetime) -> pd.DataFrame:
        keep = lines.iloc[: int(lines["sold_at"].searchsorted(tail_start))]
        keep = keep[~keep["sale_id"].isin(fresh["sale_id"])]  # a sale is never counted twice
        merged = pd.concat([keep, self._with_days(fresh)], ignore_index=True)
        return merged.sort_values("sold_at", kind="stable").reset_index(drop=True)

    def _with_days(self, lines: pd.DataFrame) -> pd.DataFrame:
        """Sorted lines with their business day."""
        if not lines["sold_at"].is_monotonic_increasing:
            lines = lines.sort_values("sold_at", kind="stable").reset_index(drop=True)
        return lines.assign(day=business_days(lines["sold_at"], self.java_tz, self.business_tz))

    def _java_now(self) -> datetime:
        return self.clock().astimezone(self.java_tz).replace(tzinfo=None)

    def _share(self, state: LinesState) -> None:
        """Write the lines to Redis for other processes, in the background."""
        if self.cache.redis is None:
            return
        self._snapshot_written = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._write_snapshot(state))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_snapshot(self, state: LinesState) -> None:
        payload = await anyio.to_thread.run_sync(_encode_snapshot, state)
        await self.cache.set_raw(SNAPSHOT_KEY, payload, _SNAPSHOT_TTL_SECONDS)

    async def _read_snapshot(self) -> LinesState | None:
        if self.cache.redis is None:
            return None
        payload = await self.cache.get_raw(SNAPSHOT_KEY)
        if payload is None:
            return None
        state = await anyio.to_thread.run_sync(_decode_snapshot, payload)
        if (self._java_now() - state.loaded_at).total_seconds() >= self.full_reload_seconds:
            return None
        logger.info("sale lines loaded from the shared snapshot", extra={"lines": len(state.lines)})
        return state


def _forget(task: asyncio.Task[Any]) -> None:
    """Retrieve a background task's outcome: callers that stopped waiting for it never will."""
    if not task.cancelled():
        task.exception()


def business_days(sold_at: pd.Series, java_tz: ZoneInfo, business_tz: ZoneInfo) -> pd.Series:
    """The business day (midnight, naive) of each naive Java-local timestamp."""
    if java_tz.key == business_tz.key:
        midnight: pd.Series = sold_at.dt.floor("D").astype("datetime64[s]")
        return midnight
    # Ambiguous wall times (the repeated hour when clocks go back) are read as standard time.
    aware = sold_at.dt.tz_localize(
        java_tz, ambiguous=np.zeros(len(sold_at), dtype=bool), nonexistent="shift_forward"
    )
    local: pd.Series = aware.dt.tz_convert(business_tz).dt.tz_localize(None).dt.floor("D")
    days: pd.Series = local.astype("datetime64[s]")
    return days


def days_between(frame: pd.DataFrame, first_day: date, last_day: date) -> pd.DataFrame:
    """The rows whose `day` is in `first_day..last_day`: a positional slice when days are sorted (always,
    but for the repeated hour when clocks go back), else a mask."""
    days = frame["day"]
    first, after = pd.Timestamp(first_day), pd.Timestamp(last_day) + pd.Timedelta(days=1)
    if days.is_monotonic_increasing:
        start, stop = days.searchsorted(first), days.searchsorted(after)
        return frame.iloc[int(start) : int(stop)]
    return frame.loc[(days >= first) & (days < after)]


def _encode_snapshot(state: LinesState) -> bytes:
    table = pa.Table.from_pandas(state.lines, preserve_index=False)
    meta = {
        b"since": state.since.isoformat().encode(),
        b"refreshed_at": state.refreshed_at.isoformat().encode(),
        b"loaded_at": state.loaded_at.isoformat().encode(),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _decode_snapshot(payload: bytes) -> LinesState:
    table = pa.ipc.open_stream(payload).read_all()
    meta = table.schema.metadata or {}
    lines = table.to_pandas()
    lines = conform(lines, SALE_LINE_COLUMNS).assign(day=lines["day"].astype("datetime64[s]"))
    return LinesState(
        lines=lines,
        since=datetime.fromisoformat(meta[b"since"].decode()),
        refreshed_at=datetime.fromisoformat(meta[b"refreshed_at"].decode()),
        loaded_at=datetime.fromisoformat(meta[b"loaded_at"].decode()),
    )
