"""Forecasts that keep score: the day's forecasts are recorded, scored once their days are known (against the
units really sold and seasonal naive), summed up by `GET /ml/accuracy` and the combined report, and pruned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from salesflow.config import Settings
from salesflow.models.analytics import Period, SalesQuery
from salesflow.models.ml import DailyForecast, ForecastRequest, ModelInfo
from salesflow.models.reports import ReportType
from salesflow.resources import open_resources
from salesflow.services.ml.accuracy import HORIZON_DAYS, recorded, score
from salesflow.state.retention import prune
from salesflow.state.tables import ForecastScore
from tests.builders import TODAY, MovableClock, pinned_clock

MADE = TODAY - timedelta(days=10)  # the day the forecasts were made: their 7 days are all known by TODAY


def forecast(mean: list[float], recent: list[float]) -> DailyForecast:
    return DailyForecast(
        first_day=MADE,
        mean=mean,
        lower={"80": [m - 1 for m in mean], "95": [m - 2 for m in mean]},
        upper={"80": [m + 1 for m in mean], "95": [m + 2 for m in mean]},
        model=ModelInfo(name="x", kind="smooth", reason="r", season_length=7, history_periods=len(recent)),
        recent=recent,
        backtest=None,
    )


def test_a_forecast_is_scored_against_the_days_and_seasonal_naive() -> None:
    history = [float(v) for v in (1, 2, 3, 4, 5, 6, 7) * 3]
    kept = recorded(forecast([4.0] * 10, history))
    assert kept is not None
    days, scale = kept
    assert days["mean"] == [4.0] * HORIZON_DAYS  # the UI's week, not the whole forecast
    assert days["naive"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # the same weekday a week before
    assert scale == 0.0 or scale is None  # a history that repeats every week: seasonal naive is perfect
    actual = np.array([4.0, 5.0, 4.0, 7.0, 0.0, 6.0, 4.0])
    result = score(days, actual)
    assert result.actual == 30.0 and result.predicted == 28.0
    assert result.abs_error == 0 + 1 + 0 + 3 + 4 + 2 + 0
    assert result.naive_abs_error == 3 + 3 + 1 + 3 + 5 + 0 + 3
    assert (result.in_80, result.in_95) == (4, 5)  # within ±1: 4, 5, 4, 4; within ±2: and 6
    assert recorded(forecast([0.0] * 10, [])) is None  # a product that never sold is not scored


async def test_the_days_forecasts_are_scored_once_their_days_are_known(
    make_settings: Callable[..., Settings], store_file: object
) -> None:
    clock = MovableClock(pinned_clock() - timedelta(days=10))
    settings = make_settings(demand_forecasts=True, forecast_accuracy_days=28)
    async with open_resources(settings, clock=clock) as resources:
        accuracy = resources.demand_forecasts.accuracy
        await resources.demand_forecasts.refresh()
        shop = await resources.forecasts.daily_forecast(None, ForecastRequest(), MADE)
        async with resources.state.session() as session:
            kept = int(await session.scalar(select(func.count()).select_from(ForecastScore)) or 0)
        products = len(await resources.lines.products())
        assert 1 < kept <= products + 1  # the shop, and every product that has sold
        assert await accuracy.score_due() == 0  # none of their days is known yet

        clock.now = pinned_clock()
        assert await accuracy.score_due() == kept
        assert await accuracy.score_due() == 0  # scored once

        sold = await resources.lines.window(MADE, MADE + timedelta(days=HORIZON_DAYS - 1))
        days = pd.date_range(MADE, periods=HORIZON_DAYS).astype("datetime64[s]")
        actual = sold.groupby("day")["quantity"].sum().reindex(days, fill_value=0).to_numpy(dtype=float)
        predicted = np.asarray(shop.mean[:HORIZON_DAYS])
        naive = np.resize(np.asarray(shop.recent[-7:]), HORIZON_DAYS)

        report = await accuracy.report(weeks=1, offset=0, limit=5)
        assert report.first_forecast <= MADE <= report.last_forecast
        assert report.shop.forecasts == 1 and report.shop.days == HORIZON_DAYS
        assert report.shop.actual_units == pytest.approx(actual.sum())
        assert report.shop.wape == pytest.approx(np.abs(actual - predicted).sum() / actual.sum(), abs=1e-3)
        assert report.shop.naive_wape == pytest.approx(np.abs(actual - naive).sum() / actual.sum(), abs=1e-3)
        assert report.products.forecasts == kept - 1 == report.total
        units = [item.actual_units for item in report.items]
        assert len(units) == 5 and units == sorted(units, reverse=True)  # the most sold first
        assert f"off by {report.shop.wape:.0%} of actual sales" in report.summary
        assert f"seasonal naive: {report.shop.naive_wape:.0%}" in report.summary

        content = await resources.reports.gatherer.gather(
            ReportType.COMBINED, SalesQuery(period=Period.WEEKLY), scope="admin", generated_at=clock()
        )
        assert content.accuracy is not None and content.accuracy.startswith(
            "Forecast accuracy, last 3 weeks:"  # all that 28 days keep
        )

        # Kept `FORECAST_ACCURACY_DAYS`: then the oldest day goes, a day a pass.
        gone = await prune(resources.state, before=clock(), forecasts_before=MADE + timedelta(days=1))
        assert gone[ForecastScore.__tablename__] == kept
        assert (await accuracy.report(weeks=1, offset=0, limit=5)).shop.forecasts == 0


async def test_a_chunk_of_the_batch_records_its_products_forecasts(
    make_settings: Callable[..., Settings], store_file: object
) -> None:
    """With job workers the batch runs as chunks (`compute_chunk`, a worker's job): each chunk keeps its
    products' forecasts to be scored, and a chunk delivered twice keeps them once."""
    settings = make_settings(demand_forecasts=True)
    async with open_resources(settings, clock=pinned_clock) as resources:
        ids = sorted(int(p) for p in (await resources.lines.products())["product_id"].tolist())[:5]
        for _ in range(2):
            await resources.demand_forecasts.compute_chunk(TODAY, 0, 1, ids)
        async with resources.state.session() as session:
            rows = (await session.execute(select(ForecastScore.as_of, ForecastScore.product_id))).all()
        assert sorted(rows) == [(TODAY, pid) for pid in ids]


def test_any_user_reads_the_accuracy_and_the_window_is_bounded(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], tokens: dict[str, str]
) -> None:
    api = serve(make_settings(forecast_accuracy_days=35))
    user = {"Authorization": f"Bearer {tokens['USER']}"}
    answer = api.get("/ml/accuracy", headers=user)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["weeks"] == 4 and body["horizon_days"] == HORIZON_DAYS and body["items"] == []
    assert body["summary"].startswith("Forecast accuracy, last 4 weeks: nothing to score yet")
    too_far = api.get("/ml/accuracy", params={"weeks": 5}, headers=user)
    assert too_far.status_code == 422 and "weeks" in too_far.text  # 35 days kept: at most 4 weeks
    assert api.get("/ml/accuracy").status_code == 401
