"""Forecast pipeline (UC8): resolve product → series → strategy (auto by default) → backtest → shape → cache.

Stages, in order:
1. `resolve_product` and `build_series` (series.py): the bucketed history, ending yesterday.
2. `run_forecast` (pure, CPU-heavy, in a worker thread): fit the strategy, forecast `horizon` buckets with
   intervals, and backtest it against seasonal naive on the held-out tail.
3. shape: dates, predictions, intervals, summary, model explanation; serialised once and cached.
A batch path (`forecast_many`) forecasts many series in a process pool.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from datetime import date, timedelta

import anyio
import numpy as np

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines import SaleLineCache
from salesflow.models.ml import (
    Accuracy,
    Backtest,
    Bucket,
    ForecastRequest,
    ForecastResponse,
    ForecastSummary,
    ModelInfo,
    ProductInfo,
)
from salesflow.services.ml import metrics
from salesflow.services.ml.selection import MODEL_FAILURES, AutoForecaster, fallback_model
from salesflow.services.ml.series import (
    BUCKET_DAYS,
    SEASON,
    Series,
    SeriesLoader,
    bucket_sums,
    horizon,
    require_known,
)
from salesflow.services.ml.strategies import (
    FORECASTERS,
    FloatArray,
    Forecaster,
    SeasonalNaive,
    finite_history,
)

logger = logging.getLogger(__name__)

PIPELINE = "ml"
TREND_TOLERANCE = 0.05  # within ±5% of the recent level: "stable"
MODELS = ("auto", *FORECASTERS)


class ForecastService:
    """`POST /ml/forecast`."""

    def __init__(self, lines: SaleLineCache, cache: Cache, *, ttl_seconds: int, history_days: int) -> None:
        self.lines = lines
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.loader = SeriesLoader(lines, history_days=history_days)
        # numba compiles statsforecast's models on first use, and two threads compiling at once can fail:
        # model fitting runs in one worker thread at a time (it is CPU-bound anyway).
        self._fitting = anyio.CapacityLimiter(1)

    async def forecast_json(self, request: ForecastRequest, *, scope: str) -> bytes:
        """The forecast as JSON bytes (cached per request and day)."""
        require_known(request.model, MODELS)
        today = self.lines.today()
        product = await self.loader.product(request)
        key = cache_key(
            PIPELINE,
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
            # Every bucket is forecast from the daily history (run_forecast sums the days).
            daily = await self.loader.series(
                product, request.model_copy(update={"period": Bucket.DAILY}), today
            )
            response = await anyio.to_thread.run_sync(
                run_forecast, daily, request, product, limiter=self._fitting
            )
            return response.model_dump_json().encode()

        return await self.cache.get_or_compute(key, self.ttl_seconds, compute, encode=bytes, decode=bytes)

    async def warm_up(self) -> float:
        """Compile every model's numba code once, off the event loop; returns the seconds it took."""
        started = time.perf_counter()
        await anyio.to_thread.run_sync(_exercise_models, limiter=self._fitting)
        return time.perf_counter() - started


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


def run_forecast(daily: Series, request: ForecastRequest, product: ProductInfo | None) -> ForecastResponse:
    """Fit, forecast and backtest (pure; CPU-heavy). Every bucket is forecast day by day and summed, so the
    weekly and 30-day answers tell the same story as the daily one for the same days."""
    size = BUCKET_DAYS[request.period]
    h = horizon(request.forecast_days, request.period)
    days = h * size
    season = SEASON[Bucket.DAILY]
    y = finite_history(daily.values)
    # Chosen for the days asked for, whatever the bucket: the daily, weekly and 30-day answers share a model.
    strategy = make_strategy(request.model, season_length=season, h=request.forecast_days)
    if len(y) == 0:
        forecast: dict[str, FloatArray] = {"mean": np.zeros(days)} | {
            f"{side}-{lv}": np.zeros(days) for lv in request.level for side in ("lo", "hi")
        }
        info = ModelInfo(
            name="none",
            kind="empty",
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
                kind="fallback",
                reason=f"{request.model} failed on this series ({type(exc).__name__}): {strategy.name}",
                season_length=season,
                history_periods=len(y),
            )
        forecast = {k: np.maximum(v, 0.0) for k, v in strategy.predict(days, request.level).items()}
    buckets = aggregate(forecast, size, request.level)
    mean = np.round(buckets["mean"], 2)
    dates = [daily.first_future + timedelta(days=i * size) for i in range(h)]
    return ForecastResponse(
        scope=request.scope,
        product_id=product.id if product else None,
        dates=dates,
        predictions=mean.tolist(),
        summary=_summary(mean, dates, bucket_sums(y, size), size, request),
        product=product,
        bucket=request.period,
        metric=request.metric,
        lower={str(lv): np.round(buckets[f"lo-{lv}"], 2).tolist() for lv in request.level},
        upper={str(lv): np.round(buckets[f"hi-{lv}"], 2).tolist() for lv in request.level},
        model=info,
        backtest=backtest_tail(y, strategy, season_length=season, h=days, bucket_days=size)
        if len(y)
        else None,
    )


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


def backtest_tail(
    y: FloatArray,
    strategy: Forecaster | AutoForecaster,
    *,
    season_length: int,
    h: int,
    bucket_days: int = 1,
) -> Backtest | None:
    """The chosen model and seasonal naive refitted without the last `h` days, scored on them (summed into
    buckets of `bucket_days`, as the answer shows them)."""
    if len(y) < 2 * h + 7 or not (isinstance(strategy, AutoForecaster) or strategy.name in FORECASTERS):
        return None
    train, actual = y[:-h], y[-h:]
    again: Forecaster | AutoForecaster
    if isinstance(strategy, AutoForecaster):  # the same choice, without choosing again
        again = AutoForecaster(
            season_length=strategy.season_length, horizon=h, members=strategy.choice_.members
        )
    else:
        again = make_strategy(strategy.name, season_length=season_length, h=h)
    try:
        ours = np.maximum(again.fit(train).predict(h)["mean"], 0)
        naive = SeasonalNaive(season_length=season_length).fit(train).predict(h)["mean"]
    except MODEL_FAILURES:  # the shorter history does not fit: no backtest rather than no forecast
        return None
    if bucket_days > 1:  # scored as shown: buckets, scaled by the naive error of the bucketed history
        actual, ours, naive = (bucket_sums(a, bucket_days) for a in (actual, ours, naive))
        train, season_length = bucket_sums(train, bucket_days), 1
    return Backtest(
        horizon=len(actual),
        model=_accuracy(actual, ours, train, season_length),
        seasonal_naive=_accuracy(actual, naive, train, season_length),
    )


def forecast_many(
    series: Sequence[FloatArray],
    *,
    h: int,
    season_length: int,
    level: Sequence[int],
    executor: Executor | None = None,
) -> list[dict[str, FloatArray]]:
    """Forecast every series (the batch path); with an executor, in parallel processes."""
    jobs = [(y, h, season_length, tuple(level)) for y in series]
    if executor is None:
        return [_forecast_one(job) for job in jobs]
    return list(executor.map(_forecast_one, jobs, chunksize=8))


def _forecast_one(job: tuple[FloatArray, int, int, tuple[int, ...]]) -> dict[str, FloatArray]:
    y, h, season_length, level = job
    if len(y) == 0:
        return {"mean": np.zeros(h)}
    return AutoForecaster(season_length=season_length, horizon=h).fit(y).predict(h, level)


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
        kind="requested",
        reason=f"{strategy.name} as requested",
        season_length=season,
        history_periods=n,
    )


def _accuracy(actual: FloatArray, forecast: FloatArray, train: FloatArray, season_length: int) -> Accuracy:
    wape = metrics.wape(actual, forecast)
    mase = metrics.mase(actual, forecast, train, season_length)
    return Accuracy(
        mae=round(metrics.mae(actual, forecast), 3),
        wape=None if np.isnan(wape) else round(wape, 2),
        mase=None if np.isnan(mase) else round(mase, 3),
    )


def _summary(
    mean: FloatArray, dates: list[date], history: FloatArray, bucket_days: int, request: ForecastRequest
) -> ForecastSummary:
    total = float(mean.sum())
    recent = history[-len(mean) :] if len(history) else np.zeros(0)
    level = float(recent.mean()) if len(recent) else 0.0
    change = (float(mean.mean()) - level) / level if level else (1.0 if total > 0 else 0.0)
    trend = "upward" if change > TREND_TOLERANCE else "downward" if change < -TREND_TOLERANCE else "stable"
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
