"""Forecasts that keep score: record → (the days pass) → score → sum up.

1. `record`: each day's batch keeps every product's forecast of its first `HORIZON_DAYS` days (the UI's
   default), with its 80%/95% bands and seasonal naive's forecast (the same weekday a week before), and the
   whole shop's forecast beside them.
2. `score_due`: once those days are known, each forecast is scored against the units sold (absolute error,
   seasonal naive's, days inside each band) and only the sums are kept.
3. `report`: `GET /ml/accuracy` sums the scores of the last N weeks, per product and overall, in one line a
   manager reads ("forecasts were off by 12% of actual sales; seasonal naive 19%").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import cast

import anyio
import numpy as np
import pandas as pd

from salesflow.data.sale_lines import SaleLineCache
from salesflow.errors import InvalidInput
from salesflow.models.ml import (
    AccuracyResponse,
    Bucket,
    DailyForecast,
    ForecastRequest,
    ProductAccuracy,
    ScoredAccuracy,
)
from salesflow.services.ml import metrics
from salesflow.services.ml.series import SEASON
from salesflow.state.forecast_scores import SHOP_SERIES, ForecastScores, Score, Totals
from salesflow.state.tables import ForecastScore

logger = logging.getLogger(__name__)

# What is scored: each day's forecast over the horizon the UI asks for by default (a week).
HORIZON_DAYS: int = ForecastRequest.model_fields["forecast_days"].default
SEASON_DAYS = SEASON[Bucket.DAILY]
BANDS = ("80", "95")  # the bands scored (the table keeps a count for each)
SCORE_BATCH = 5_000  # forecasts scored a pass: a day of a large catalogue; a backlog takes several passes


def recorded(forecast: DailyForecast) -> tuple[dict[str, list[float]], float | None] | None:
    """What is kept of a forecast until its days are known; None for a series that never sold."""
    recent = np.asarray(forecast.recent, dtype=np.float64)
    if len(forecast.mean) < HORIZON_DAYS or not len(recent) or not all(b in forecast.lower for b in BANDS):
        return None
    # Seasonal naive: the same weekday of the last week of history (the last value when shorter than that).
    last_week = recent[-SEASON_DAYS:]
    naive = (
        np.resize(last_week, HORIZON_DAYS)
        if len(last_week) == SEASON_DAYS
        else np.full(HORIZON_DAYS, recent[-1])
    )
    days = {"mean": forecast.mean[:HORIZON_DAYS], "naive": naive.tolist()}
    for band in BANDS:
        days[f"lo{band}"] = forecast.lower[band][:HORIZON_DAYS]
        days[f"hi{band}"] = forecast.upper[band][:HORIZON_DAYS]
    scale = metrics.mase_scale(recent, SEASON_DAYS)
    rounded = {key: [round(float(v), 4) for v in values] for key, values in days.items()}
    return rounded, (scale if np.isfinite(scale) and scale > 0 else None)


def score(days: Mapping[str, Sequence[float]], actual: np.ndarray) -> Score:
    """A recorded forecast against the units sold on its days."""
    mean, naive = np.asarray(days["mean"]), np.asarray(days["naive"])

    def inside(band: str) -> int:
        return int(
            np.sum(
                (actual >= np.asarray(days[f"lo{band}"]) - 1e-9)
                & (actual <= np.asarray(days[f"hi{band}"]) + 1e-9)
            )
        )

    return Score(
        days=len(actual),
        actual=float(actual.sum()),
        predicted=float(mean.sum()),
        abs_error=float(np.abs(actual - mean).sum()),
        naive_abs_error=float(np.abs(actual - naive).sum()),
        in_80=inside("80"),
        in_95=inside("95"),
    )


class ForecastAccuracy:
    def __init__(self, scores: ForecastScores, lines: SaleLineCache, *, kept_days: int) -> None:
        self.scores = scores
        self.lines = lines
        self.kept_days = kept_days

    @property
    def max_weeks(self) -> int:
        """The most weeks of forecasts still kept: the oldest was made `7 · weeks + 6` days ago."""
        return max(1, (self.kept_days - HORIZON_DAYS + 1) // 7)

    async def record(self, as_of: date, forecasts: Mapping[int, DailyForecast]) -> int:
        """Keep the forecasts made on `as_of` (product id or `SHOP_SERIES` → forecast); how many were new."""
        kept = {series: found for series, forecast in forecasts.items() if (found := recorded(forecast))}
        return await self.scores.record(as_of, kept) if kept else 0

    async def score_due(self) -> int:
        """Score the forecasts whose days are all known (the last was yesterday or earlier); how many."""
        made_by = self.lines.today() - timedelta(days=HORIZON_DAYS)
        due = await self.scores.due(made_by=made_by, limit=SCORE_BATCH)
        if not due:
            return 0
        first = min(row.as_of for row in due)
        lines = await self.lines.window(first, made_by + timedelta(days=HORIZON_DAYS - 1))
        scores = await anyio.to_thread.run_sync(_score_all, due, lines)
        await self.scores.save(scores)
        logger.info("forecasts scored", extra={"forecasts": len(scores), "made_by": str(made_by)})
        return len(scores)

    async def report(self, *, weeks: int, offset: int, limit: int) -> AccuracyResponse:
        """`GET /ml/accuracy`: the last `weeks` weeks of scored forecasts, and a page of products."""
        first, last = self._window(weeks)
        shop, products = await self._overall(first, last)
        page, total = await self.scores.per_product(first=first, last=last, offset=offset, limit=limit)
        catalogue = (await self.lines.products()).set_index("product_id")
        items = [
            ProductAccuracy(
                product_id=pid,
                sku=str(catalogue.at[pid, "sku"]) if pid in catalogue.index else None,
                name=str(catalogue.at[pid, "name"]) if pid in catalogue.index else None,
                **_figures(totals).model_dump(),
            )
            for pid, totals in page
        ]
        return AccuracyResponse(
            weeks=weeks,
            horizon_days=HORIZON_DAYS,
            first_forecast=first,
            last_forecast=last,
            shop=shop,
            products=products,
            items=items,
            total=total,
            offset=offset,
            limit=limit,
            summary=summary_line(weeks, shop, products),
        )

    async def summary(self, weeks: int) -> str:
        """The one line on the last `weeks` weeks (at most what is kept) that the combined report shows."""
        weeks = min(weeks, self.max_weeks)
        return summary_line(weeks, *await self._overall(*self._window(weeks)))

    def _window(self, weeks: int) -> tuple[date, date]:
        """The days the forecasts of the last `weeks` weeks were made on (the newest: its days are known)."""
        if weeks > self.max_weeks:
            raise InvalidInput(
                f"forecasts are kept {self.kept_days} days: at most {self.max_weeks} weeks",
                field="weeks",
                value=weeks,
            )
        last = self.lines.today() - timedelta(days=HORIZON_DAYS)
        return last - timedelta(days=7 * weeks - 1), last

    async def _overall(self, first: date, last: date) -> tuple[ScoredAccuracy, ScoredAccuracy]:
        """The shop's forecasts and all products' together."""
        shop = await self.scores.totals(first=first, last=last, products=False)
        products = await self.scores.totals(first=first, last=last, products=True)
        return _figures(shop), _figures(products)


def summary_line(weeks: int, shop: ScoredAccuracy, products: ScoredAccuracy) -> str:
    """The one line a manager reads (the report's too)."""
    span = "last week" if weeks == 1 else f"last {weeks} weeks"
    if shop.wape is None and products.wape is None:
        wait = f"a forecast is scored {HORIZON_DAYS} days after it is made"
        return f"Forecast accuracy, {span}: nothing to score yet ({wait})."
    parts = []
    if shop.wape is not None:
        parts.append(
            f"the shop's daily sales forecasts were off by {shop.wape:.0%} of actual sales"
            f" (seasonal naive: {_percent(shop.naive_wape)})"
        )
    if products.wape is not None:
        parts.append(f"products' by {products.wape:.0%} (seasonal naive: {_percent(products.naive_wape)})")
    if products.coverage_95 is not None:
        parts.append(f"95% ranges held {products.coverage_95:.0%} of product days")
    return f"Forecast accuracy, {span}: " + "; ".join(parts) + "."


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _figures(totals: Totals) -> ScoredAccuracy:
    def share(part: float, whole: float) -> float | None:
        return round(part / whole, 4) if whole > 0 else None

    return ScoredAccuracy(
        forecasts=totals.forecasts,
        days=totals.days,
        actual_units=round(totals.actual, 2),
        forecast_units=round(totals.predicted, 2),
        wape=share(totals.abs_error, totals.actual),
        naive_wape=share(totals.naive_abs_error, totals.actual),
        mase=None if totals.mase is None else round(totals.mase, 4),
        naive_mase=None if totals.naive_mase is None else round(totals.naive_mase, 4),
        coverage_80=share(totals.in_80, totals.days),
        coverage_95=share(totals.in_95, totals.days),
    )


def _score_all(due: Sequence[ForecastScore], lines: pd.DataFrame) -> dict[tuple[date, int], Score]:
    """Each due forecast against the units sold on its days (a day without a sale sold 0)."""
    by_product = {
        cast(int, pid): sold.droplevel(0)
        for pid, sold in lines.groupby(["product_id", "day"])["quantity"].sum().groupby(level=0)
    }
    nothing = pd.Series(dtype=np.float64)
    shop = lines.groupby("day")["quantity"].sum()
    scores: dict[tuple[date, int], Score] = {}
    for row in due:
        if row.forecast is None:
            continue
        days = pd.date_range(row.as_of, periods=HORIZON_DAYS, freq="D").astype("datetime64[s]")
        sold = shop if row.product_id == SHOP_SERIES else by_product.get(row.product_id, nothing)
        actual = sold.reindex(days, fill_value=0).to_numpy(dtype=np.float64)
        scores[row.as_of, row.product_id] = score(row.forecast, actual)
    return scores
