"""The day's batch of product forecasts: for stock analytics' demand and for `POST /ml/forecast`.

Stages: products and their daily series → `forecast_many` in worker processes (off the event loop and out of
the API's threads) → each product's `DailyForecast` kept where forecast requests look for it, and the mean
daily demand over the lead time per product → kept in the state database (`DemandBatches`). With Redis the
cache's single-flight lock makes one process compute it for all.

One demand truth per day: a business day's demand is settled by the newest batch completed *before the day
began* (at most a week old), never by one that lands during the day, so every read of the day — stock
analytics, reorder suggestions, alerts, reports — sees the same figure, whichever process answers and
whenever the day's own batch finishes. Without such a batch the day uses the trailing rate
(analytics/demand.py), all day.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, time, timedelta

import anyio
import numpy as np
import orjson

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines import SaleLineCache
from salesflow.metrics import DEMAND_BATCH_COMPLETED
from salesflow.models.cache import CachePipeline
from salesflow.models.ml import DEFAULT_LEVELS, ForecastRequest
from salesflow.services.analytics.demand import SettledDemand
from salesflow.services.ml.accuracy import ForecastAccuracy
from salesflow.services.ml.forecasting import FORECAST_DAYS, ForecastService, forecast_many
from salesflow.state.demand_batches import KEPT_DAYS, DemandBatches
from salesflow.state.forecast_scores import SHOP_SERIES

logger = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 600.0
EnqueueChunk = Callable[[str, int, int, list[int]], Awaitable[None]]  # as_of (ISO), index, count, product ids
_TTL_SECONDS = 26 * 3600
CHUNK_RECHECK_SECONDS = 0.5  # the batch's chunks are checked again at least this often
# What the batch forecasts: what a forecast request asks for unless it says otherwise.
BATCH_METRIC = ForecastRequest.model_fields["metric"].default
BATCH_MODEL = ForecastRequest.model_fields["model"].default


class DemandForecasts:
    """Forecast daily demand per product over the lead time, computed once a day in the background."""

    def __init__(
        self,
        lines: SaleLineCache,
        cache: Cache,
        forecasts: ForecastService,
        batches: DemandBatches,
        accuracy: ForecastAccuracy,
        *,
        lead_days: int,
        workers: int = 1,
        enqueue_chunk: EnqueueChunk | None = None,
        chunk_products: int = 100,
        chunk_wait_seconds: float = 3600.0,
    ) -> None:
        self.lines = lines
        self.cache = cache
        self.forecasts = forecasts
        self.batches = batches
        self.accuracy = accuracy
        self.lead_days = lead_days
        # The history and length of a request's forecast, so that requests can be answered from the batch.
        self.history_days = forecasts.loader.history_days
        self.days = max(FORECAST_DAYS, lead_days)
        self.workers = workers
        # Distributed shape: the batch is split into chunks of products that the job workers share.
        self.enqueue_chunk = enqueue_chunk
        self.chunk_products = chunk_products
        self.chunk_wait_seconds = chunk_wait_seconds
        self.refreshes = 0
        self._settled: dict[date, SettledDemand | None] = {}  # a day's demand never changes: kept per day
        self._chunk_pool: ProcessPoolExecutor | None = (
            None  # a job worker keeps its pool (and compiled models)
        )

    def chunk_key(self, as_of: date, index: int, count: int) -> str:
        return cache_key(
            CachePipeline.ML,
            "shared",
            kind="demand-chunk",
            as_of=as_of,
            lead=self.lead_days,
            chunk=f"{index}/{count}",
        )

    def chunks_done_key(self, as_of: date, count: int) -> str:
        """Where each chunk says it is done, waking the process that waits for the batch."""
        return cache_key(
            CachePipeline.ML,
            "shared",
            kind="demand-chunks-done",
            as_of=as_of,
            lead=self.lead_days,
            count=count,
        )

    def key(self, as_of: date) -> str:
        return cache_key(CachePipeline.ML, "shared", kind="demand", as_of=as_of, lead=self.lead_days)

    async def daily_demand(self, as_of: date) -> SettledDemand | None:
        """The demand settled for business day `as_of`: the newest batch completed before the day began
        (at most a week old), or None (the trailing rate is used all day)."""
        if as_of in self._settled:
            return self._settled[as_of]
        day_start = datetime.combine(as_of, time(), tzinfo=self.lines.business_tz)
        found = await self.batches.newest_before(day_start, oldest=as_of - timedelta(days=KEPT_DAYS - 1))
        settled = SettledDemand(basis=found[0], figures=found[1]) if found else None
        if len(self._settled) > 8:
            self._settled.clear()
        self._settled[as_of] = settled
        return settled

    async def refresh(self) -> dict[int, float]:
        """Compute today's forecasts (once across processes) and keep them for the days that follow."""
        as_of = self.lines.today()
        computed = False

        async def compute() -> dict[str, float]:
            nonlocal computed
            computed = True
            return {str(k): v for k, v in (await self._forecast(as_of)).items()}

        # Another process's batch is waited for as long as a batch may take: it holds (and renews) the lock.
        result = await self.cache.get_or_compute(
            self.key(as_of), _TTL_SECONDS, compute, wait_seconds=self.chunk_wait_seconds
        )
        figures = {int(k): float(v) for k, v in result.items()}
        if computed:
            await self.batches.save(as_of, figures)
            await self._record_shop_forecast(as_of)
            self.refreshes += 1
            DEMAND_BATCH_COMPLETED.set_to_current_time()
            logger.info("demand forecasts refreshed", extra={"products": len(result), "as_of": str(as_of)})
        return figures

    async def check(self) -> None:
        """Make today's batch when it is missing, and score the forecasts whose days are known (run every
        `CHECK_EVERY_SECONDS` by the API process)."""
        if not await self.batches.has(self.lines.today()):
            await self.refresh()
        await self.accuracy.score_due()

    async def _forecast(self, as_of: date) -> dict[int, float]:
        product_ids = sorted(int(p) for p in (await self.lines.products())["product_id"].tolist())
        if self.enqueue_chunk is None:
            return await self._compute(as_of, product_ids)
        size = max(self.chunk_products, 1)
        chunks = [product_ids[i : i + size] for i in range(0, len(product_ids), size)]
        for index, chunk in enumerate(chunks):
            await self.enqueue_chunk(as_of.isoformat(), index, len(chunks), chunk)
        merged: dict[int, float] = {}
        waiting = set(range(len(chunks)))
        checking = set(waiting)
        with anyio.fail_after(self.chunk_wait_seconds):
            while waiting:
                for index in sorted(checking & waiting):
                    raw = await self.cache.get_raw(self.chunk_key(as_of, index, len(chunks)))
                    if raw is not None:
                        merged.update({int(k): float(v) for k, v in orjson.loads(raw).items()})
                        waiting.discard(index)
                if waiting:
                    done = await self.cache.pop(
                        self.chunks_done_key(as_of, len(chunks)), CHUNK_RECHECK_SECONDS
                    )
                    # The chunk that says it is done; none within the pop's timeout: every chunk waited for
                    # (a signal may be lost while Redis fails over).
                    checking = {int(done)} if done is not None and done.isdigit() else waiting
        return merged

    async def compute_chunk(self, as_of: date, index: int, count: int, product_ids: list[int]) -> None:
        """One chunk of the day's batch (a job): its products' forecasts, into the shared cache."""
        key = self.chunk_key(as_of, index, count)
        if await self.cache.get_raw(key) is None:  # else delivered twice: already done
            if self._chunk_pool is None:
                self._chunk_pool = _spawn_pool(self.workers)
            result = await self._compute(as_of, product_ids, pool=self._chunk_pool)
            await self.cache.set_raw(key, orjson.dumps({str(k): v for k, v in result.items()}), _TTL_SECONDS)
        await self.cache.push(self.chunks_done_key(as_of, count), str(index).encode(), _TTL_SECONDS)

    async def aclose(self) -> None:
        if self._chunk_pool is not None:
            _stop(self._chunk_pool)
            self._chunk_pool = None

    async def _compute(
        self, as_of: date, product_ids: list[int], *, pool: ProcessPoolExecutor | None = None
    ) -> dict[int, float]:
        """The products' forecasts in a spawned process pool: `pool`, or one for this call only (stopped at
        once when the call is cancelled, so that a shutdown does not wait for the batch)."""
        all_products = await self.lines.products()
        products = all_products[all_products["product_id"].isin(product_ids)]
        ids = [int(pid) for pid in products["product_id"].tolist()]
        all_series = await self.forecasts.loader.daily_values(ids, BATCH_METRIC, as_of)
        closed = await self.forecasts.closed_days(as_of, self.days)
        # The whole batch in one call has read every product already: the pooled model need not again.
        every_product = all_series if len(ids) == len(all_products) else None
        pooled = await self.forecasts.pooled_model(BATCH_METRIC, as_of, every_product=every_product)
        executor = pool or _spawn_pool(self.workers)
        try:
            forecasts = await anyio.to_thread.run_sync(
                lambda: forecast_many(
                    all_series,
                    first_day=as_of,
                    days=self.days,
                    level=DEFAULT_LEVELS,
                    executor=executor,
                    closed=closed,
                    pooled=pooled,
                ),
                abandon_on_cancel=True,  # a shutdown must not wait for the batch to finish
            )
        finally:
            if pool is None:
                _stop(executor)
        demand: dict[int, float] = {}
        by_product = dict(zip(ids, forecasts, strict=True))
        for pid, forecast in by_product.items():
            await self.forecasts.keep(pid, forecast, metric=BATCH_METRIC, model=BATCH_MODEL)
            demand[pid] = float(np.mean(forecast.mean[: self.lead_days]))
        await self.accuracy.record(as_of, by_product)
        return demand

    async def _record_shop_forecast(self, as_of: date) -> None:
        """The whole shop's forecast of the day (the one `POST /ml/forecast` answers for GLOBAL), kept to be
        scored beside the products'."""
        request = ForecastRequest(metric=BATCH_METRIC, model=BATCH_MODEL)
        shop = await self.forecasts.daily_forecast(None, request, as_of)
        await self.accuracy.record(as_of, {SHOP_SERIES: shop})


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    # Spawned processes: forking a server with threads is unsafe, and the models' work stays out of it.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now, even mid-batch (on shutdown), so that the server exits at once."""
    # The executor has no public way to stop a running worker; its process table is stable across versions.
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
