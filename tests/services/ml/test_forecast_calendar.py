"""The shop's calendar shapes its forecasts: closed days are forecast as 0 (and listed), and the days it was
closed do not pull the fit down; on a synthetic series and on the real UK shop (closed on Saturdays and over
Christmas)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesflow.config import Settings
from salesflow.models.ml import ForecastRequest
from salesflow.resources import open_resources
from salesflow.services.ml.forecasting import forecast_series
from salesflow.services.shop_calendar import ShopCalendar
from tests.builders import RETAIL, load_retail_store, read_retail_lines

FIRST_DAY = date(2026, 3, 2)  # a Monday


def test_closed_days_are_left_out_of_the_fit_and_forecast_as_zero() -> None:
    rng = np.random.default_rng(7)
    y = 20 + 5 * np.sin(np.arange(140) * 2 * np.pi / 7) + rng.normal(0, 1, 140)
    y[-12:-2] = 0.0  # a ten-day closure, just ended
    start = FIRST_DAY - timedelta(days=len(y))
    closure = frozenset(start + timedelta(days=i) for i in range(len(y) - 12, len(y) - 2))
    ahead = frozenset({FIRST_DAY + timedelta(days=3)})  # a planned closure
    shut = forecast_series(
        y, model="auto", level=[80, 95], days=14, first_day=FIRST_DAY, closed=closure | ahead
    )
    naive = forecast_series(y, model="auto", level=[80, 95], days=14, first_day=FIRST_DAY)
    open_days = [i for i in range(14) if i != 3]
    assert shut.closed == [FIRST_DAY + timedelta(days=3)]
    assert shut.mean[3] == 0 and all(shut.upper[lv][3] == 0 for lv in ("80", "95"))
    # The closure's zeros pull the ordinary forecast down; left out, the open days sell as before it.
    assert np.mean(np.asarray(shut.mean)[open_days]) == pytest.approx(20, rel=0.15)
    assert np.mean(np.asarray(naive.mean)[open_days]) < np.mean(np.asarray(shut.mean)[open_days])
    assert shut.recent[-12:-2] == [0.0] * 10  # the history shown is what was sold


def test_the_calendar_reads_closures_from_the_shops_own_history() -> None:
    calendar = ShopCalendar.from_settings(
        country="GB", subdivision=None, closed_dates=[date(2027, 1, 20)], closed_weekdays=["sun"]
    )
    days = [date(2025, 12, 1) + timedelta(days=i) for i in range(385)]  # to 20 December 2026
    sales = np.full(len(days), 10.0)
    for i, day in enumerate(days):
        # Closed from 23 December to 3 January and on Good Friday 2026 (3 April); open on Easter Monday.
        if (day.month, day.day) >= (12, 23) or (day.month == 1 and day.day <= 3) or day == date(2026, 4, 3):
            sales[i] = 0.0
    ahead = [days[-1] + timedelta(days=i) for i in range(1, 120)]
    closed = calendar.closed_days(days, sales, ahead)
    assert {date(2025, 12, 27), date(2026, 4, 3)} <= closed  # history: around Christmas, a holiday
    assert date(2026, 4, 6) not in closed  # Easter Monday: it sold
    assert {date(2026, 12, 24), date(2026, 12, 29), date(2027, 1, 2)} <= closed  # a year on, same dates
    assert date(2027, 1, 20) in closed and date(2027, 1, 17) in closed  # planned; a Sunday
    assert date(2027, 1, 19) not in closed
    assert date(2027, 3, 26) in closed and date(2027, 3, 29) not in closed  # Good Friday; Easter Monday


@pytest.mark.skipif(not RETAIL.exists(), reason="real data not found (set SHARED_DIR)")
async def test_the_real_shop_is_forecast_closed_over_christmas_and_on_saturdays(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(shop_country="GB", shop_closed_weekdays=["sat"])
    settings.source.data_dir.mkdir(parents=True, exist_ok=True)
    load_retail_store(settings.source.embedded_db_path, read_retail_lines())
    made = date(2011, 12, 10)  # the day after the data set's last day
    async with open_resources(
        settings, clock=lambda: datetime.combine(made, time(8), tzinfo=UTC)
    ) as resources:
        shop = await resources.forecasts.daily_forecast(None, ForecastRequest(forecast_days=35), made)
    days = pd.date_range(made, periods=len(shop.mean)).date
    closed = set(shop.closed)
    # It sold nothing from 23 December 2010 to 3 January 2011, around Christmas: the same days a year on.
    assert {date(2011, 12, 24), date(2011, 12, 28), date(2011, 12, 31), date(2012, 1, 3)} <= closed
    assert all(day in closed for day in days if day.weekday() == 5)  # Saturdays
    assert all(shop.mean[i] == 0 for i, day in enumerate(days) if day in closed)
    assert all(shop.mean[i] > 0 for i, day in enumerate(days[:10]) if day not in closed)
