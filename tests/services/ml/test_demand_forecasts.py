"""The daily batch of forecasts feeds stock analytics' demand and reorder points."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import orjson
import pytest
from prometheus_client import REGISTRY

from salesflow.config import Settings
from salesflow.metrics import DEMAND_BATCH_COMPLETED_METRIC
from salesflow.models.analytics import Period
from salesflow.models.ml import Bucket, ForecastRequest, Scope
from salesflow.resources import open_resources
from tests.builders import TODAY, MovableClock, pinned_clock


async def test_a_days_demand_is_settled_before_it_begins(
    make_settings: Callable[..., Settings], store_file
) -> None:
    """One demand truth per day: the day's batch changes nothing on the day it lands (every read of the day
    sees the trailing rate), and settles the next day's demand (below the floor: no demand)."""
    clock = MovableClock()
    async with open_resources(make_settings(demand_forecasts=True), clock=clock) as resources:
        today = TODAY
        before = await resources.stock_analytics.product_states(today)
        assert set(before["demand_source"]) == {"rate"}
        report = await resources.stock_analytics.report_json(Period.DAILY, scope="admin")

        started = time.time()
        forecasts = await resources.demand_forecasts.refresh()
        assert len(forecasts) == len(before) and all(v >= 0 for v in forecasts.values())
        # Operators see that the batch ran although nothing changes before tomorrow.
        completed = REGISTRY.get_sample_value(DEMAND_BATCH_COMPLETED_METRIC)
        assert completed is not None and completed >= started
        same_day = await resources.stock_analytics.product_states(today)
        assert same_day.equals(before)
        assert await resources.stock_analytics.report_json(Period.DAILY, scope="admin") == report

        clock.now += timedelta(days=1)
        tomorrow = today + timedelta(days=1)
        after = (await resources.stock_analytics.product_states(tomorrow)).set_index("product_id")
        assert set(after["demand_source"]) == {"forecast"}
        floor = resources.stock_analytics.rule.floor
        expected = np.array([forecasts[pid] if forecasts[pid] >= floor else 0.0 for pid in after.index])
        np.testing.assert_allclose(after["daily_demand"].to_numpy(), expected)
        selling = after["daily_demand"] > 0
        np.testing.assert_allclose(
            after.loc[selling, "coverage_days"],
            np.minimum(after.loc[selling, "current_stock"].clip(lower=0) / expected[selling], 366),
        )
        assert (after.loc[~selling, "reorder_point"] == 0).all()
        assert after.loc[~selling, "coverage_days"].isna().all()
        # The cached report follows the settled demand by its key: nothing had to clear the analytics cache.
        cached = orjson.loads(await resources.stock_analytics.report_json(Period.DAILY, scope="admin"))
        assert {p["demand_source"] for p in cached["critical_products"]} == {"forecast"}

        clock.now -= timedelta(days=1)
        await resources.demand_forecasts.refresh()
        assert resources.demand_forecasts.refreshes == 1  # the day's batch is computed once


async def test_the_batch_answers_product_forecasts_as_a_request_would_compute_them(
    make_settings: Callable[..., Settings], store_file
) -> None:
    """After the day's batch a product forecast is only a view of the batch's forecast (no model is fitted:
    the only cache miss is the response's own key), and it is the answer a service without the batch
    computes for the same request, the pooled model's share included."""
    requests = [
        ForecastRequest(scope=Scope.PRODUCT, product_id=pid, forecast_days=days, period=period)
        for pid, days, period in (
            (1, 7, Bucket.DAILY),
            (2, 30, Bucket.WEEKLY),
            (3, 90, Bucket.MONTHLY),
            (4, 28, Bucket.DAILY),
        )
    ]
    async with open_resources(make_settings(demand_forecasts=True), clock=pinned_clock) as batched:
        await batched.demand_forecasts.refresh()
        misses = batched.cache.stats().misses
        from_batch = [orjson.loads(await batched.forecasts.forecast_json(r, scope="user")) for r in requests]
        assert batched.cache.stats().misses == misses + len(requests)
    async with open_resources(make_settings(demand_forecasts=False), clock=pinned_clock) as alone:
        computed = [orjson.loads(await alone.forecasts.forecast_json(r, scope="user")) for r in requests]
    assert from_batch == computed
    assert [len(answer["predictions"]) for answer in from_batch] == [7, 5, 3, 28]
    # A smooth product is averaged with the day's pooled model, the same model in both services.
    assert from_batch[3]["model"]["name"] == "theta+ets+pooled"
    assert from_batch[0]["backtest"]["horizon"] == 28  # product 1 has 103 days of history


async def test_a_failing_pooled_model_leaves_auto_alone_for_the_day(
    make_settings: Callable[..., Settings], store_file, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """The pooled model is an addition to `auto`: when LightGBM fails, the forecast is `auto`'s own, said so
    in its model block, and the failure is logged once for the day."""
    import lightgbm

    def broken_fit(*args: object, **kwargs: object) -> None:
        raise lightgbm.basic.LightGBMError("out of memory (injected)")

    monkeypatch.setattr(lightgbm.LGBMRegressor, "fit", broken_fit)
    request = ForecastRequest(scope=Scope.PRODUCT, product_id=4, forecast_days=28, period=Bucket.DAILY)
    async with open_resources(make_settings(demand_forecasts=False), clock=pinned_clock) as resources:
        answer = orjson.loads(await resources.forecasts.forecast_json(request, scope="user"))
        again = ForecastRequest(scope=Scope.PRODUCT, product_id=3, forecast_days=28, period=Bucket.DAILY)
        await resources.forecasts.forecast_json(again, scope="user")
    assert answer["model"]["name"] == "theta+ets"  # "theta+ets+pooled" with a working LightGBM
    assert len(answer["predictions"]) == 28 and min(answer["predictions"]) >= 0
    failures = [r for r in caplog.records if r.getMessage().startswith("pooled model failed")]
    assert len(failures) == 1


async def test_without_the_batch_the_setting_keeps_the_rate(
    make_settings: Callable[..., Settings], store_file
) -> None:
    async with open_resources(make_settings(demand_forecasts=False), clock=pinned_clock) as resources:
        assert resources.stock_analytics.forecasts is None
        states = await resources.stock_analytics.product_states(TODAY)
        assert set(states["demand_source"]) == {"rate"}


pytestmark = pytest.mark.timeout(300)


async def test_a_shutdown_stops_the_batch_at_once(make_settings: Callable[..., Settings], store_file) -> None:
    async with open_resources(make_settings(demand_forecasts=True), clock=pinned_clock) as resources:
        task = asyncio.create_task(resources.demand_forecasts.refresh())
        async with asyncio.timeout(60):
            # Process state has no event to await: poll with a deadline.
            while not multiprocessing.active_children():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(10):
            while multiprocessing.active_children():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert time.monotonic() - started < 10
        assert resources.demand_forecasts.refreshes == 0
