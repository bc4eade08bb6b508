"""Forecast pipeline (UC8): resolve product → daily series → strategy (auto by default) → backtest → shape.

Stages, in order:
1. `resolve_product` and `build_series` (series.py): the daily history, ending yesterday.
2. `forecast_series` (pure, CPU-heavy, in a worker thread or the batch's processes): fit the strategy once,
   forecast `FORECAST_DAYS` days with intervals, and keep the backtest of the last `SELECTION_DAYS` days
   against seasonal naive. The result, a `DailyForecast`, is cached for the day, shared by every caller.
3. `shaped`: a request's view of it (its first days, summed into its buckets, with summary and backtest
   scored in those buckets), serialised once and cached per request.
The day's batch (`forecast_many`, demand_forecasts.py) makes every product's `DailyForecast` in advance, so
that a product forecast over HTTP is only stage 3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import Executor
from datetime import date, timedelta

import anyio
import numpy as np
import numpy.typing as npt

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines import SaleLineCache
from salesflow.models.cache import CachePipeline
from salesflow.models.ml import (
    Accuracy,
    Backtest,
    Bucket,
    DailyBacktest,
    DailyForecast,
    ForecastRequest,
    ForecastResponse,
    ForecastSummary,
    ModelInfo,
    ProductInfo,
    ProductRef,
    SeriesKind,
    Trend,
)
from salesflow.services.ml import metrics
from salesflow.services.ml.pooled import POOLED_KINDS, PooledForecaster, averaged_with
from salesflow.services.ml.selection import MODEL_FAILURES, AutoForecaster, fallback_model
from salesflow.services.ml.series import (
    BUCKET_DAYS,
    SEASON,
    SeriesLoader,
    bucket_sums,
    horizon,
    require_known,
)
from salesflow.services.ml.strategies import (
    FORECASTERS,
    FloatArray,
    Forecast,
    Forecaster,
    SeasonalNaive,
    finite_history,
)
from salesflow.services.shop_calendar import ShopCalendar

logger = logging.getLogger(__name__)

TREND_TOLERANCE = 0.05  # within ±5% of the recent level: "stable"
MODELS = ("auto", *FORECASTERS)
# Every forecast covers 13 weeks, so that each request the UI offers (1–90 days, by day, week or 30 days) is
# a view of the same forecast; a longer request gets a forecast of its own length.
FORECAST_DAYS = 91
# Models are chosen, and the answer's backtest is scored, on 28-day windows whatever the request's length:
# one choice per series and day, shared by all of its views.
SELECTION_DAYS = 28
# A 30-day bucket does not fit in the 28 held-out days: those answers score their backtest by week.
BACKTEST_BUCKET_DAYS = {1: 1, 7: 7, 30: 7}
PRICE_DAYS = 28  # the whole shop's units are turned into money at its revenue per unit over these days
RECENT_DAYS_KEPT = 30  # history kept beyond the forecast's length, for the summary's comparison
DAILY_FORECAST_TTL_SECONDS = 26 * 3600  # the key holds the day; this only bounds what a day leaves behind


def covered_days(request: ForecastRequest) -> int:
    """The length of the daily forecast that a request is a view of."""
    return max(FORECAST_DAYS, horizon(request.forecast_days, request.period) * BUCKET_DAYS[request.period])


def daily_forecast_key(
    product_id: int | None, *, metric: str, model: str, level: Sequence[int], days: int, today: date
) -> str:
    """Where the day's forecast of a series is cached, shared by all callers (the batch writes it too)."""
    return cache_key(
        CachePipeline.ML,
        "shared",
        kind="daily-forecast",
        product="all" if product_id is None else product_id,
        metric=metric,
        model=model,
        level=",".join(map(str, sorted(set(level)))),
        days=days,
        today=today,
    )


class ForecastService:
    """`POST /ml/forecast`."""

    def __init__(
        self,
        lines: SaleLineCache,
        cache: Cache,
        *,
        ttl_seconds: int,
        history_days: int,
        calendar: ShopCalendar | None = None,
    ) -> None:
        self.lines = lines
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.loader = SeriesLoader(lines, history_days=history_days)
        self.calendar = calendar
        self._closed: dict[tuple[date, int], frozenset[date]] = {}  # (today, days) → the shop's closed days
        self._pooled: dict[tuple[str, date], PooledForecaster | None] = {}  # (metric, today) → the day's
        self._pooling = anyio.Lock()
        # numba compiles statsforecast's models on first use, and two threads compiling at once can fail:
        # model fitting runs in one worker thread at a time (it is CPU-bound anyway).
        self._fitting = anyio.CapacityLimiter(1)

    async def forecast_json(self, request: ForecastRequest, *, scope: str) -> bytes:
        """The forecast as JSON bytes (cached per request and day)."""
        require_known(request.model, MODELS)
        today = self.lines.today()
        product = await self.loader.product(request)
        key = cache_key(
            CachePipeline.ML,
            scope,
            kind="forecast",
            product=product.id if product else "all",
            days=request.forecast_days,
            bucket=request.period,
            metric=request.metric,
            model=request.model,
            level=",".join(map(str, sorted(request.level))),
            today=today,
        )

        async def compute() -> bytes:
            forecast = await self.daily_forecast(product, request, today)
            answer = shaped(forecast, request, product)
            if request.metric == "quantity":
                answer = in_money(answer, await self.unit_price(product, today))
            return answer.model_dump_json().encode()

        return await self.cache.get_or_compute(key, self.ttl_seconds, compute, encode=bytes, decode=bytes)

    async def daily_forecast(
        self, product: ProductInfo | None, request: ForecastRequest, today: date
    ) -> DailyForecast:
        """The day's forecast of the series the request names: from the cache (or the batch), else made."""
        days = covered_days(request)
        key = daily_forecast_key(
            product.id if product else None,
            metric=request.metric,
            model=request.model,
            level=request.level,
            days=days,
            today=today,
        )

        async def compute() -> DailyForecast:
            daily = await self.loader.series(
                product, request.model_copy(update={"period": Bucket.DAILY}), today
            )
            closed = await self.closed_days(today, days)
            pooled = (
                await self.pooled_model(request.metric, today)
                if product and request.model == "auto"
                else None
            )

            def fitted() -> DailyForecast:
                forecast = forecast_series(
                    daily.values,
                    model=request.model,
                    level=request.level,
                    days=days,
                    first_day=today,
                    closed=closed,
                )
                return with_pooled([forecast], pooled, [daily.values], closed)[0]

            return await anyio.to_thread.run_sync(fitted, limiter=self._fitting)

        return await self.cache.get_or_compute(
            key,
            DAILY_FORECAST_TTL_SECONDS,
            compute,
            encode=_encode_daily_forecast,
            decode=DailyForecast.model_validate_json,
        )

    async def unit_price(self, product: ProductInfo | None, today: date) -> float | None:
        """The price a units forecast is turned into money at: the product's catalogue price, or for the
        whole shop its revenue per unit over the last `PRICE_DAYS` days (its mix); None when unknown."""
        if product is not None:
            products = await self.lines.products()
            price = products.loc[products["product_id"] == product.id, "price"]
            return float(price.iloc[0]) if len(price) and np.isfinite(price.iloc[0]) else None
        lines = await self.lines.window(today - timedelta(days=PRICE_DAYS), today - timedelta(days=1))
        units = float(lines["quantity"].sum())
        return round(float(lines["subtotal"].sum()) / units, 4) if units > 0 else None

    async def pooled_model(
        self, metric: str, today: date, *, every_product: Sequence[FloatArray] | None = None
    ) -> PooledForecaster | None:
        """The day's model learned across every product's daily history (None when there is too little to
        learn from). Fitted once a day in each process that needs it: the fit is seeded and single-threaded,
        so the batch, its chunks on job workers and a request each fit the same model. `every_product`:
        those histories, in the catalogue's order, when the caller has read them already."""
        async with self._pooling:
            if (metric, today) not in self._pooled:
                series = every_product
                if series is None:
                    products = await self.lines.products()
                    ids = [int(pid) for pid in products["product_id"].tolist()]
                    series = await self.loader.daily_values(ids, metric, today)
                closed = await self.closed_days(today, FORECAST_DAYS)
                try:
                    # Not under the fitting limiter (numba's): other forecasts go on while it learns.
                    model = await anyio.to_thread.run_sync(lambda: fit_pooled(series, today, closed))
                    fitted: PooledForecaster | None = model if model.fitted_ else None
                except Exception:  # an addition to `auto`: its failure must never fail a forecast
                    logger.exception("pooled model failed; auto alone today", extra={"metric": metric})
                    fitted = None
                self._pooled = {key: kept for key, kept in self._pooled.items() if key[1] == today}
                self._pooled[metric, today] = fitted
            return self._pooled[metric, today]

    async def closed_days(self, today: date, days: int) -> frozenset[date]:
        """The days the shop was closed in the history, and will be in the `days` from `today` (the shop's
        calendar read against its daily sales); kept per day."""
        if self.calendar is None:
            return frozenset()
        if (today, days) not in self._closed:
            shop = await self.loader.series(None, ProductRef(period=Bucket.DAILY, metric="quantity"), today)
            ahead = [today + timedelta(days=i) for i in range(days)]
            closed = await anyio.to_thread.run_sync(
                self.calendar.closed_days, shop.starts, shop.values, ahead
            )
            if len(self._closed) > 8:
                self._closed.clear()
            self._closed[today, days] = closed
        return self._closed[today, days]

    async def keep(self, product_id: int, forecast: DailyForecast, *, metric: str, model: str) -> None:
        """Cache a forecast made elsewhere (the day's batch) where requests will look for it."""
        key = daily_forecast_key(
            product_id,
            metric=metric,
            model=model,
            level=[int(lv) for lv in forecast.lower],
            days=len(forecast.mean),
            today=forecast.first_day,
        )
        await self.cache.set_raw(key, _encode_daily_forecast(forecast), DAILY_FORECAST_TTL_SECONDS)

    async def warm_up(self) -> float:
        """Compile every model's numba code once, off the event loop; returns the seconds it took."""
        started = time.perf_counter()
        await anyio.to_thread.run_sync(_exercise_models, limiter=self._fitting)
        return time.perf_counter() - started


def _encode_daily_forecast(forecast: DailyForecast) -> bytes:
    return forecast.model_dump_json().encode()


def _exercise_models() -> None:
    smooth = 10 + np.sin(np.arange(120) * 2 * np.pi / 7) + np.arange(120) * 0.01
    sporadic = np.where(np.arange(120) % 9 == 0, 2.0, 0.0)
    for y in (smooth, sporadic):
        AutoForecaster(season_length=7, horizon=7).fit(y).predict(7, [80])
    for factory in FORECASTERS.values():
        factory(7).fit(smooth).predict(7, [80])


def make_strategy(name: str, *, season_length: int, h: int) -> Forecaster | AutoForecaster:
    """A strategy by name (`auto` or one of `FORECASTERS`)."""
    if name == "auto":
        return AutoForecaster(season_length=season_length, horizon=h)
    return FORECASTERS[name](season_length)


def forecast_series(
    values: FloatArray,
    *,
    model: str,
    level: Sequence[int],
    days: int,
    first_day: date,
    closed: frozenset[date] = frozenset(),
) -> DailyForecast:
    """Fit once, forecast `days` days from `first_day`, keep the backtest (pure; CPU-heavy). The days of
    `closed` (the shop's calendar) are left out of the fit, and forecast as 0."""
    season = SEASON[Bucket.DAILY]
    level = sorted(set(level))
    history = finite_history(values)
    y = without_closures(history, first_day, closed)
    strategy = make_strategy(model, season_length=season, h=SELECTION_DAYS)
    if len(y) == 0:
        forecast: dict[str, FloatArray] = {"mean": np.zeros(days)} | {
            f"{side}-{lv}": np.zeros(days) for lv in level for side in ("lo", "hi")
        }
        info = ModelInfo(
            name="none",
            kind=SeriesKind.EMPTY,
            reason="no sales history yet: zero",
            season_length=season,
            history_periods=0,
        )
    else:
        try:
            strategy.fit(y)
            info = _model_info(strategy, season, len(y))
        except (
            MODEL_FAILURES
        ) as exc:  # a requested model that cannot fit this series (auto falls back itself)
            strategy = fallback_model(y, season)
            info = ModelInfo(
                name=strategy.name,
                kind=SeriesKind.FALLBACK,
                reason=f"{model} failed on this series ({type(exc).__name__}): {strategy.name}",
                season_length=season,
                history_periods=len(y),
            )
        forecast = {k: np.maximum(v, 0.0) for k, v in strategy.predict(days, level).items()}
    ahead = [first_day + timedelta(days=i) for i in range(days)]
    shut = closed_mask(first_day, days, closed)
    for band in forecast.values():
        band[shut] = 0.0
    return DailyForecast(
        first_day=first_day,
        mean=forecast["mean"].tolist(),
        lower={str(lv): forecast[f"lo-{lv}"].tolist() for lv in level},
        upper={str(lv): forecast[f"hi-{lv}"].tolist() for lv in level},
        model=info,
        recent=history[-(days + RECENT_DAYS_KEPT) :].tolist(),
        backtest=daily_backtest(y, strategy, season_length=season) if len(y) else None,
        closed=[day for day, is_shut in zip(ahead, shut, strict=True) if is_shut],
    )


def closed_mask(first_day: date, days: int, closed: Collection[date]) -> npt.NDArray[np.bool_]:
    """Which of the `days` from `first_day` the shop is closed on."""
    return np.array([first_day + timedelta(days=i) in closed for i in range(days)], dtype=bool)


def daily_bands(forecast: DailyForecast, level: Iterable[int | str], days: int | None = None) -> Forecast:
    """The forecast's first `days` days (all by default) as arrays: `mean`, `lo-80`, `hi-80`, …."""
    bands = {"mean": np.asarray(forecast.mean[:days])}
    for lv in level:
        bands[f"lo-{lv}"] = np.asarray(forecast.lower[str(lv)][:days])
        bands[f"hi-{lv}"] = np.asarray(forecast.upper[str(lv)][:days])
    return bands


def fitted_history(values: FloatArray, first_day: date, closed: frozenset[date]) -> FloatArray:
    """The history the models fit: finite, and the shop's closed days filled."""
    return without_closures(finite_history(values), first_day, closed)


def without_closures(y: FloatArray, first_day: date, closed: frozenset[date]) -> FloatArray:
    """The history (its last day the day before `first_day`) with each day the shop was closed and sold
    nothing replaced by the same weekday a week before: a closure does not pull the level or the season
    down. A closure in the first week stays 0."""
    if not closed or not len(y):
        return y
    filled = y.copy()
    start = first_day - timedelta(days=len(y))
    for i in range(SEASON[Bucket.DAILY], len(y)):
        if filled[i] == 0 and start + timedelta(days=i) in closed:
            filled[i] = filled[i - SEASON[Bucket.DAILY]]
    return filled


def shaped(
    forecast: DailyForecast, request: ForecastRequest, product: ProductInfo | None
) -> ForecastResponse:
    """A request's view of the day's forecast: its first days, summed into the request's buckets."""
    size = BUCKET_DAYS[request.period]
    h = horizon(request.forecast_days, request.period)
    days = h * size
    daily = daily_bands(forecast, request.level, days)
    buckets = aggregate(daily, size, request.level)
    mean = rounded_keeping_sums(buckets["mean"])
    dates = [forecast.first_day + timedelta(days=i * size) for i in range(h)]
    asked = daily["mean"][: request.forecast_days]
    return ForecastResponse(
        scope=request.scope,
        product_id=product.id if product else None,
        dates=dates,
        predictions=mean.tolist(),
        summary=_summary(mean, dates, size, trend=trend_label(asked, np.asarray(forecast.recent))),
        product=product,
        bucket=request.period,
        metric=request.metric,
        lower={str(lv): np.round(buckets[f"lo-{lv}"], 2).tolist() for lv in request.level},
        upper={str(lv): np.round(buckets[f"hi-{lv}"], 2).tolist() for lv in request.level},
        model=forecast.model,
        backtest=scored(forecast.backtest, BACKTEST_BUCKET_DAYS[size]) if forecast.backtest else None,
        closed_days=[day for day in forecast.closed if day < forecast.first_day + timedelta(days=days)],
    )


def in_money(answer: ForecastResponse, unit_price: float | None) -> ForecastResponse:
    """The answer's units at `unit_price`, bucket by bucket (from the rounded units: the sums agree)."""
    if unit_price is None:
        return answer
    revenue = rounded_keeping_sums(np.asarray(answer.predictions), times=unit_price).tolist()
    return answer.model_copy(update={"unit_price": unit_price, "revenue": revenue})


def rounded_keeping_sums(values: FloatArray, decimals: int = 2, *, times: float = 1.0) -> FloatArray:
    """Each value (× `times`) to `decimals` places such that every running total is the exact running total
    rounded: the same days add up to the same figure whether they come by day, by week or by 30 days (each
    value rounded alone would not: 28 days of 0.103 are 2.80, 4 weeks of 0.721 are 2.88)."""
    totals = np.round(np.round(np.cumsum(values), decimals) * times, decimals)
    return np.asarray(np.round(np.diff(totals, prepend=0.0), decimals), dtype=np.float64)


def trend_label(ahead: FloatArray, history: FloatArray) -> Trend:
    """`upward`/`downward` when the forecast's daily mean over the days asked for is more than
    `TREND_TOLERANCE` above/below the daily mean of as many days just before today; else `stable`. Days,
    not buckets: the same days get the same label whatever the bucket."""
    recent = history[-len(ahead) :] if len(ahead) else history[:0]
    level = float(recent.mean()) if len(recent) else 0.0
    coming = float(ahead.mean()) if len(ahead) else 0.0
    change = (coming - level) / level if level else (1.0 if coming > 0 else 0.0)
    return "upward" if change > TREND_TOLERANCE else "downward" if change < -TREND_TOLERANCE else "stable"


def aggregate(forecast: dict[str, FloatArray], size: int, level: Sequence[int]) -> dict[str, FloatArray]:
    """Daily forecasts summed into `size`-day buckets. The bands add the days' half-widths in quadrature (as
    for independent daily errors): the sum of the bounds would be a band for a week in which every day
    errs the same way at once."""
    if size == 1:
        return forecast
    mean = forecast["mean"]
    summed = {"mean": mean.reshape(-1, size).sum(axis=1)}
    for lv in level:
        for side, sign in (("lo", -1.0), ("hi", 1.0)):
            half = np.abs(forecast[f"{side}-{lv}"] - mean).reshape(-1, size)
            summed[f"{side}-{lv}"] = np.maximum(summed["mean"] + sign * np.sqrt((half**2).sum(axis=1)), 0.0)
    return summed


def daily_backtest(
    y: FloatArray, strategy: Forecaster | AutoForecaster, *, season_length: int
) -> DailyBacktest | None:
    """The chosen model and seasonal naive without the last `SELECTION_DAYS` days, forecasting them. `auto`'s
    own selection already made that forecast (its last backtest window); other models are refitted."""
    h = SELECTION_DAYS
    if len(y) < 2 * h + 7 or not (isinstance(strategy, AutoForecaster) or strategy.name in FORECASTERS):
        return None
    train, actual = y[:-h], y[-h:]
    try:
        ours = _held_out_forecast(strategy, train, season_length=season_length, h=h)
        naive = SeasonalNaive(season_length=season_length).fit(train).predict(h)["mean"]
    except MODEL_FAILURES:  # the shorter history does not fit: no backtest rather than no forecast
        return None
    return DailyBacktest(
        actual=actual.tolist(),
        model=ours.tolist(),
        seasonal_naive=naive.tolist(),
        scales={
            size: _finite_or_none(
                metrics.mase_scale(bucket_sums(train, size), season_length if size == 1 else 1)
            )
            for size in set(BACKTEST_BUCKET_DAYS.values())
        },
    )


def _held_out_forecast(
    strategy: Forecaster | AutoForecaster, train: FloatArray, *, season_length: int, h: int
) -> FloatArray:
    if isinstance(strategy, AutoForecaster):
        window = strategy.choice_.last_window
        if len(window) == h and not strategy.closed_:  # the selection's last window is this very backtest
            return np.asarray(window)
        again = AutoForecaster(
            season_length=strategy.season_length, horizon=h, members=strategy.choice_.members
        )
        return np.maximum(again.fit(train).predict(h)["mean"], 0)
    return np.maximum(
        make_strategy(strategy.name, season_length=season_length, h=h).fit(train).predict(h)["mean"], 0
    )


def scored(backtest: DailyBacktest, bucket_days: int) -> Backtest:
    """The backtest scored in buckets of `bucket_days` days (MASE scaled by the training part's naive error
    in such buckets)."""
    actual, ours, naive = (
        bucket_sums(np.asarray(values), bucket_days)
        for values in (backtest.actual, backtest.model, backtest.seasonal_naive)
    )
    scale = backtest.scales.get(bucket_days)
    return Backtest(
        horizon=len(actual),
        bucket_days=bucket_days,
        model=_accuracy(actual, ours, scale),
        seasonal_naive=_accuracy(actual, naive, scale),
    )


def forecast_many(
    series: Sequence[FloatArray],
    *,
    first_day: date,
    days: int = FORECAST_DAYS,
    level: Sequence[int],
    model: str = "auto",
    executor: Executor | None = None,
    closed: frozenset[date] = frozenset(),
    pooled: PooledForecaster | None = None,
) -> list[DailyForecast]:
    """Forecast every series (the batch path); with an executor, in parallel processes. With the day's
    pooled model, `auto`'s smooth series are averaged with it."""
    jobs = [(y, model, tuple(level), days, first_day, closed) for y in series]
    if executor is None:
        forecasts = [_forecast_one(job) for job in jobs]
    else:
        forecasts = list(executor.map(_forecast_one, jobs, chunksize=8))
    return with_pooled(forecasts, pooled, series, closed)


def fit_pooled(series: Sequence[FloatArray], first_day: date, closed: frozenset[date]) -> PooledForecaster:
    """The model learned across the daily histories of a shop's products, as `auto` fits them."""
    season = SEASON[Bucket.DAILY]
    model = PooledForecaster(horizon=FORECAST_DAYS, season_length=season, window=max(SELECTION_DAYS, season))
    return model.fit([fitted_history(y, first_day, closed) for y in series])


def with_pooled(
    forecasts: Sequence[DailyForecast],
    pooled: PooledForecaster | None,
    series: Sequence[FloatArray],
    closed: frozenset[date],
) -> list[DailyForecast]:
    """Smooth series' forecasts averaged with the pooled model's (one prediction call for them all)."""
    averaged = list(forecasts)
    chosen = [i for i, f in enumerate(forecasts) if f.model.kind in POOLED_KINDS]
    if pooled is None or not chosen:
        return averaged
    days = len(forecasts[chosen[0]].mean)  # one batch, one length
    histories = [fitted_history(series[i], forecasts[i].first_day, closed) for i in chosen]
    for i, ahead in zip(chosen, pooled.predict(histories, days), strict=True):
        if ahead is not None:
            averaged[i] = _averaged(forecasts[i], ahead)
    return averaged


def _averaged(forecast: DailyForecast, ahead: FloatArray) -> DailyForecast:
    averaged = averaged_with(daily_bands(forecast, forecast.lower), ahead)
    shut = closed_mask(forecast.first_day, len(ahead), set(forecast.closed))
    for band in averaged.values():
        band[shut] = 0.0
    info = forecast.model
    return forecast.model_copy(
        update={
            "mean": averaged["mean"].tolist(),
            "lower": {lv: averaged[f"lo-{lv}"].tolist() for lv in forecast.lower},
            "upper": {lv: averaged[f"hi-{lv}"].tolist() for lv in forecast.upper},
            "model": info.model_copy(
                update={
                    "name": f"{info.name}+{PooledForecaster.name}",
                    # The backtest stays the own model's: the shared one learned from those very days.
                    "reason": (
                        f"{info.reason}; averaged with a model learned across the shop's products"
                        f" (the backtest scores {info.name} alone)"
                    ),
                }
            ),
        }
    )


def _forecast_one(
    job: tuple[FloatArray, str, tuple[int, ...], int, date, frozenset[date]],
) -> DailyForecast:
    y, model, level, days, first_day, closed = job
    return forecast_series(y, model=model, level=level, days=days, first_day=first_day, closed=closed)


def _model_info(strategy: Forecaster | AutoForecaster, season: int, n: int) -> ModelInfo:
    if isinstance(strategy, AutoForecaster):
        choice = strategy.choice_
        return ModelInfo(
            name="+".join(choice.members),
            kind=choice.kind,
            reason=choice.reason,
            season_length=strategy.period_,
            history_periods=n,
        )
    return ModelInfo(
        name=strategy.name,
        kind=SeriesKind.REQUESTED,
        reason=f"{strategy.name} as requested",
        season_length=season,
        history_periods=n,
    )


def _accuracy(actual: FloatArray, forecast: FloatArray, scale: float | None) -> Accuracy:
    wape = metrics.wape(actual, forecast)
    return Accuracy(
        mae=round(metrics.mae(actual, forecast), 3),
        wape=None if np.isnan(wape) else round(wape, 2),
        mase=round(metrics.mae(actual, forecast) / scale, 3) if scale else None,
    )


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _summary(mean: FloatArray, dates: list[date], bucket_days: int, *, trend: Trend) -> ForecastSummary:
    total = float(mean.sum())
    peak = int(np.argmax(mean)) if len(mean) else 0
    unit = {1: "day", 7: "week", 30: "30 days"}[bucket_days]
    covered = len(mean) * bucket_days  # whole buckets: may be more days than asked for, and says so
    label = (
        f"Next {covered} days, by {unit} ({len(mean)} × {bucket_days} days)"
        if bucket_days > 1
        else f"Next {covered} days"
    )
    return ForecastSummary(
        total=round(total, 2),
        daily_average=round(total / (len(mean) * bucket_days), 2) if len(mean) else 0.0,
        peak_value=round(float(mean[peak]), 2) if len(mean) else 0.0,
        peak_day=dates[peak] if dates else None,
        trend=trend,
        period_label=label,
    )
