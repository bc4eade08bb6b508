"""Forecasting strategies on synthetic series with known structure."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pytest

from salesflow.models.ml import ForecastRequest, Scope
from salesflow.services.ml.forecasting import covered_days, forecast_series, shaped
from salesflow.services.ml.selection import UNTESTED_SEASONAL, AutoForecaster, backtest_errors, detect_season
from salesflow.services.ml.strategies import (
    ETS,
    FORECASTERS,
    Ensemble,
    Intermittent,
    LongerSeasonalNaive,
    SeasonalNaive,
    Theta,
)

WEEK = np.array([0.8, 0.9, 1.0, 1.0, 1.2, 1.6, 0.5])


def weekly_series(n: int = 140, level: float = 50.0, noise: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level * np.tile(WEEK, n // 7 + 1)[:n] + rng.normal(0, noise, n)


def test_seasonal_naive_repeats_the_last_season() -> None:
    y = np.arange(1.0, 15.0)
    forecast = SeasonalNaive(season_length=7).fit(y).predict(10)["mean"]
    np.testing.assert_allclose(forecast, [8, 9, 10, 11, 12, 13, 14, 8, 9, 10])


@pytest.mark.parametrize("model", [ETS(season_length=7), Theta(season_length=7)])
def test_models_recover_weekly_seasonality(model) -> None:
    y = weekly_series()
    forecast = model.fit(y).predict(14)["mean"]
    truth = 50 * np.tile(WEEK, 2)
    assert np.corrcoef(forecast, truth)[0, 1] > 0.95
    assert np.mean(np.abs(forecast - truth)) < 4


def test_intervals_cover_about_their_nominal_rate() -> None:
    hits = {80: 0, 95: 0}
    total = 0
    for seed in range(30):
        y = weekly_series(n=147, seed=seed)
        train, actual = y[:140], y[140:]
        forecast = ETS(season_length=7).fit(train).predict(7, level=[80, 95])
        for level in hits:
            hits[level] += int(
                np.sum((actual >= forecast[f"lo-{level}"]) & (actual <= forecast[f"hi-{level}"]))
            )
        total += len(actual)
    assert 0.65 <= hits[80] / total <= 0.95
    assert 0.85 <= hits[95] / total <= 1.0
    assert hits[95] >= hits[80]


def test_auto_forecasts_are_never_negative() -> None:
    y = np.maximum(np.linspace(20, 0.5, 60) + np.random.default_rng(1).normal(0, 1, 60), 0)
    forecast = AutoForecaster(season_length=7, horizon=30).fit(y).predict(30, level=[80, 95])
    assert all((values >= 0).all() for values in forecast.values())


@pytest.mark.parametrize(
    ("y", "kind"),
    [
        (np.array([3.0, 5.0, 4.0]), "short"),
        (np.array([2.0]), "short"),
        (np.zeros(60), "intermittent"),
        (np.where(np.arange(90) % 9 == 0, 2.0, 0.0), "intermittent"),
        (np.r_[3.0, np.zeros(80)], "sparse"),  # sold once, never again: a rate over the history
        (np.tile([5.0, 6.0, 0.0, 7.0, 5.0, 8.0, 9.0], 12), "smooth"),  # closed on one weekday
        (weekly_series(), "smooth"),
    ],
)
def test_auto_classifies_and_always_answers(y: np.ndarray, kind: str) -> None:
    model = AutoForecaster(season_length=7, horizon=7).fit(y)
    forecast = model.predict(7, level=[80])
    assert model.choice_.kind == kind
    assert forecast["mean"].shape == (7,) and np.isfinite(forecast["mean"]).all()
    assert (forecast["lo-80"] <= forecast["mean"] + 1e-9).all() and (
        forecast["mean"] <= forecast["hi-80"] + 1e-9
    ).all()


def test_a_new_product_with_three_days_gets_its_mean() -> None:
    forecast = AutoForecaster(season_length=7, horizon=7).fit(np.array([3.0, 5.0, 4.0])).predict(7)["mean"]
    np.testing.assert_allclose(forecast, 4.0)


def test_a_few_years_of_a_growing_level_carry_their_trend_not_their_mean() -> None:
    years = np.asarray(
        100.0 * 1.08 ** np.arange(10), dtype=np.float64
    )  # ten yearly totals, growing 8% a year: 100 → 200
    model = AutoForecaster(season_length=1, horizon=4).fit(years)
    assert model.choice_.kind == "smooth"
    assert (model.predict(4)["mean"] > 0.95 * years[-1]).all()  # their mean would be 145
    with_a_gap = np.r_[years[:5], 0.0, years[6:]]  # a period without demand: sporadic, not a level
    assert AutoForecaster(season_length=1, horizon=4).fit(with_a_gap).choice_.kind == "short"
    beyond_the_history = AutoForecaster(season_length=1, horizon=12).fit(years)
    assert beyond_the_history.choice_.kind == "short"


def test_a_young_product_is_forecast_by_the_median_of_three_models() -> None:
    """Too short to backtest (40 days for 28 ahead) but with weeks to repeat: Theta, ETS and the last week,
    the middle one of the three each day, so that one model gone wrong on little history does not pull."""
    y = weekly_series(n=40)
    model = AutoForecaster(season_length=7, horizon=28).fit(y)
    assert model.choice_.members == UNTESTED_SEASONAL and "median" in model.choice_.reason
    each = [FORECASTERS[name](7).fit(y).predict(28)["mean"] for name in UNTESTED_SEASONAL]
    np.testing.assert_allclose(model.predict(28)["mean"], np.maximum(np.median(each, axis=0), 0))
    # Without two seasons of history there is no season to repeat: the default pair.
    months = AutoForecaster(season_length=12, horizon=18).fit(weekly_series(n=20))
    assert months.choice_.members == ("theta", "ets")


def test_without_past_errors_to_check_them_a_pairs_band_spans_both_models_bands() -> None:
    """Sixteen years, four ahead: too short to backtest, so no error of the series' own checks the models'
    bands; the pair's band runs from the lower model's bound to the higher's, not their middle."""
    rng = np.random.default_rng(3)
    years = 100.0 + np.cumsum(rng.normal(3.0, 8.0, 16))
    model = AutoForecaster(season_length=1, horizon=4).fit(years)
    assert model.choice_.members == ("theta", "ets") and not model.choice_.errors
    theta, ets = (FORECASTERS[name](1).fit(years).predict(4, [95]) for name in ("theta", "ets"))
    assert not np.allclose(theta["hi-95"], ets["hi-95"])  # two models, two bands
    forecast = model.predict(4, [95])
    np.testing.assert_allclose(forecast["lo-95"], np.minimum(theta["lo-95"], ets["lo-95"]))
    np.testing.assert_allclose(forecast["hi-95"], np.maximum(theta["hi-95"], ets["hi-95"]))
    np.testing.assert_allclose(forecast["mean"], (theta["mean"] + ets["mean"]) / 2)
    # Where past errors floor the bands, a combination keeps the middle of its members' bands.
    middle = Ensemble([Theta(season_length=1), ETS(season_length=1)]).fit(years).predict(4, [95])
    np.testing.assert_allclose(middle["hi-95"], (theta["hi-95"] + ets["hi-95"]) / 2)


@pytest.mark.parametrize(
    ("y", "h"),
    [
        (np.r_[np.full(14, 2.0), 1e6], 2),  # one bulk order after days of two: a wildly overdispersed count
        (np.arange(1.0, 9.0) * 3.5, 2),  # a perfect trend: each model's band hugs its own mean
        (np.full(4, 1e14), 4),  # equal huge values: the models' bands are NaN
    ],
)
def test_every_band_holds_the_mean_whatever_the_history(y: np.ndarray, h: int) -> None:
    forecast = AutoForecaster(season_length=1, horizon=h).fit(y).predict(h, level=[80, 95])
    assert all(np.isfinite(values).all() and (values >= 0).all() for values in forecast.values())
    order = ("lo-95", "lo-80", "mean", "hi-80", "hi-95")
    for lower, upper in itertools.pairwise(order):
        assert (forecast[lower] <= forecast[upper] * (1 + 1e-12)).all(), (lower, upper, forecast)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsforecast's own, on four points: the case itself
@pytest.mark.parametrize("model", ["theta", "ets", "mstl"])
def test_a_requested_models_bands_are_finite_and_hold_the_mean(model: str) -> None:
    """Four equal values of 1e14: the models' own bounds are NaN, which JSON would carry as null."""
    answer = forecast_series(
        np.full(4, 1e14), model=model, level=[80, 95], days=7, first_day=date(2026, 3, 2)
    )
    mean = np.asarray(answer.mean)
    for key in ("80", "95"):
        lower, upper = np.asarray(answer.lower[key]), np.asarray(answer.upper[key])
        assert np.isfinite(lower).all() and np.isfinite(upper).all()
        assert (lower <= mean).all() and (mean <= upper).all()


def test_all_zero_history_forecasts_zero() -> None:
    forecast = AutoForecaster(season_length=7, horizon=7).fit(np.zeros(60)).predict(7, level=[95])
    np.testing.assert_allclose(forecast["mean"], 0.0)


def test_intermittent_rate_matches_the_demand() -> None:
    y = np.where(np.arange(120) % 10 == 0, 5.0, 0.0)  # 5 units every 10 days
    forecast = Intermittent(method="croston_sba").fit(y).predict(10, level=[80])
    assert 0.35 <= forecast["mean"][0] <= 0.7  # true rate 0.5 a day
    assert (forecast["hi-80"] >= forecast["mean"]).all()


def test_backtest_prefers_what_fits_the_series() -> None:
    y = weekly_series(noise=0.5)
    scores = backtest_errors(
        y, ("seasonal_naive", "theta"), (("seasonal_naive",), ("theta",)), season_length=7, h=7, n_windows=2
    ).scaled_mae
    naive_on_trend = backtest_errors(
        np.arange(100.0),
        ("seasonal_naive", "theta"),
        (("seasonal_naive",), ("theta",)),
        season_length=7,
        h=7,
        n_windows=2,
    ).scaled_mae
    # Scaled by the in-sample seasonal-naive error: seasonal naive scores about 1 on a seasonal series,
    # and a trend defeats it.
    assert scores["seasonal_naive"] < 1.5 and scores["theta"] < 1.5
    assert naive_on_trend["theta"] < 0.2 * naive_on_trend["seasonal_naive"]


def test_season_detection() -> None:
    assert detect_season(weekly_series(n=200)) == 7
    assert detect_season(np.random.default_rng(3).normal(100, 5, 200)) == 1
    quarters = np.tile([80.0, 120.0, 150.0, 90.0], 10) * np.linspace(1, 1.5, 40)  # ten years, a summer peak
    assert detect_season(quarters + np.random.default_rng(4).normal(0, 3, 40)) == 4


def test_every_registered_strategy_fits_and_predicts() -> None:
    y = weekly_series()
    for name, factory in FORECASTERS.items():
        forecast = factory(7).fit(y).predict(7)
        assert forecast["mean"].shape == (7,), name
    assert Ensemble([SeasonalNaive(season_length=7), Theta(season_length=7)]).name == "seasonal_naive+theta"


def test_closed_weekdays_are_forecast_zero_and_the_others_modelled() -> None:
    y = (
        np.tile([50.0, 60.0, 0.0, 70.0, 50.0, 80.0, 90.0], 16)
        + np.r_[np.random.default_rng(4).normal(0, 2, 112)]
    )
    y[2::7] = 0.0
    model = AutoForecaster(season_length=7, horizon=14).fit(y)
    forecast = model.predict(14, level=[80])
    assert model.closed_ == [2]
    np.testing.assert_allclose(forecast["mean"][2::7], 0.0)
    np.testing.assert_allclose(forecast["hi-80"][2::7], 0.0)
    assert np.all(forecast["mean"][[0, 1, 3, 4, 5, 6]] > 40)


def test_every_registered_model_is_rebuilt_by_its_own_name() -> None:
    """The backtest rebuilds a model from its `name`: each registry key must be that name."""
    for key, build in FORECASTERS.items():
        assert build(7).name == key


def _degenerate_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    counts = rng.poisson(5, 120).astype(float)
    return {
        "missing values inside": np.where(rng.random(120) < 0.1, np.nan, counts),
        "an infinite day": np.r_[counts[:60], np.inf, counts[61:]],
        "only missing values": np.full(40, np.nan),
        "revenue with returns": rng.normal(10, 30, 120),
        "a constant": np.full(60, 3.0),
        "an absurd value": np.r_[counts[:119], 1e300],
        "two days": np.array([1.0, 2.0]),
        "mostly negative returns": np.where(rng.random(100) < 0.7, 0, rng.normal(-5, 10, 100)),
    }


@pytest.mark.parametrize("case", list(_degenerate_cases()))
@pytest.mark.parametrize("model", ["auto", *FORECASTERS])
def test_a_degenerate_series_never_raises_and_forecasts_finite_numbers(case: str, model: str) -> None:
    values = _degenerate_cases()[case]
    request = ForecastRequest(scope=Scope.GLOBAL, forecast_days=14, model=model)
    forecast = forecast_series(
        values, model=model, level=request.level, days=covered_days(request), first_day=date(2026, 1, 1)
    )
    answer = shaped(forecast, request, None)
    numbers = [*answer.predictions, *(v for b in answer.lower.values() for v in b)]
    numbers += [v for b in answer.upper.values() for v in b]
    assert len(answer.predictions) == 14 and np.isfinite(numbers).all(), answer.model
    assert answer.model.reason


def test_hours_in_a_day_in_a_week_are_forecast_with_both_seasons() -> None:
    """An hourly series with a daily and a weekly cycle (weekends differ): `auto` detects the 24-hour season,
    lets MSTL compete (two full weeks of history), and beats one-season Theta on the next 48 hours."""
    rng = np.random.default_rng(3)
    hours = np.arange(24 * 7 * 6 + 48)
    daily = 1 + 0.6 * np.sin(2 * np.pi * hours / 24)
    weekend = np.where((hours // 24) % 7 >= 5, 0.5, 1.0)
    y = rng.poisson(200 * daily * weekend).astype(float)
    train, actual = y[:-48], y[-48:]
    auto = AutoForecaster(season_length=1, horizon=48).fit(train)
    assert auto.period_ == 24 and "mstl" in auto.choice_.members, auto.choice_.reason
    theta = Theta(season_length=24).fit(train).predict(48)["mean"]
    ours = auto.predict(48)["mean"]
    assert np.mean(np.abs(actual - ours)) < 0.7 * np.mean(np.abs(actual - theta))


def test_the_last_week_of_hours_competes_where_a_week_is_within_reach() -> None:
    """Hourly data 48 hours ahead: the last week repeated competes, alone and with MSTL; a year of days for a
    shop's 28 days ahead is out of reach, so daily selection is unchanged."""
    hours = np.arange(24 * 7 * 4, dtype=float)
    week = LongerSeasonalNaive(season_length=24).fit(hours).predict(48)["mean"]
    np.testing.assert_allclose(week, hours[-168:][:48])
    rng = np.random.default_rng(6)
    y = rng.poisson(100 * np.where((np.arange(24 * 7 * 5) // 24) % 7 >= 5, 0.3, 1.0)).astype(float)
    hourly = AutoForecaster(season_length=24, horizon=48).fit(y)
    assert {"longer_seasonal_naive", "mstl+longer_seasonal_naive"} <= set(hourly.choice_.scores)
    days = rng.poisson(40, 2 * 365 + 100).astype(float)
    daily = AutoForecaster(season_length=7, horizon=28).fit(days)
    assert "mstl" in daily.choice_.scores and "longer_seasonal_naive" not in daily.choice_.scores


def test_count_bands_are_skewed_and_never_narrower_than_past_errors() -> None:
    from salesflow.services.ml.strategies import count_intervals, quantile_floor

    mean = np.array([4.0, 40.0])
    normal = {"mean": mean, "lo-95": mean - 1.96 * 4, "hi-95": mean + 1.96 * 4}  # sd 4: overdispersed at 4
    bands = count_intervals(normal, [95])
    assert (
        bands["lo-95"][0] >= 0 and bands["hi-95"][0] - 4 > 4 - bands["lo-95"][0]
    )  # a count's long right tail
    assert bands["lo-95"][1] == np.floor(bands["lo-95"][1])  # whole units
    errors = np.r_[np.zeros(30), np.full(5, 25.0)]  # now and then a bulk order 25 above the forecast
    forecast = {"mean": mean, **bands}
    floor = quantile_floor(forecast, [95], errors, around=mean)
    assert np.all(floor["hi-95"] >= mean + 25) and np.all(floor["lo-95"] == bands["lo-95"])
    assert (
        quantile_floor(forecast, [95], errors[:5], around=mean) is forecast
    )  # too few errors to say anything


def test_days_in_a_week_in_a_year_are_forecast_with_both_seasons() -> None:
    """Three years of daily sales with a weekly and a yearly cycle (a summer peak): with two years and more of
    history MSTL (7 + 365) competes and follows the coming season; one-season models repeat last week."""
    rng = np.random.default_rng(5)
    days = np.arange(3 * 365 + 56)
    weekly = np.where(days % 7 >= 5, 1.4, 1.0)
    yearly = 1 + 0.8 * np.sin(2 * np.pi * (days - 80) / 365)
    y = rng.poisson(40 * weekly * yearly).astype(float)
    train, actual = y[:-56], y[-56:]
    auto = AutoForecaster(season_length=7, horizon=56).fit(train)
    assert "mstl" in auto.choice_.members, auto.choice_.reason
    theta = Theta(season_length=7).fit(train).predict(56)["mean"]
    ours = auto.predict(56)["mean"]
    assert np.mean(np.abs(actual - ours)) < 0.7 * np.mean(np.abs(actual - theta))
    short = AutoForecaster(season_length=7, horizon=56).fit(train[-600:])  # under two years: one season
    assert "mstl" not in short.choice_.members


def test_the_bands_of_lumpy_intermittent_demand_hold_its_bulk_orders() -> None:
    """A product sold on one day in eight, in orders of 20 to 60 units: a Poisson band around the Croston rate
    (about 5 a day) would miss every order; the floor at the series' own backtest errors holds them."""
    inside = total = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        y = np.where(rng.random(328) < 0.125, rng.integers(20, 61, 328), 0).astype(float)
        train, actual = y[:-28], y[-28:]
        auto = AutoForecaster(season_length=7, horizon=28).fit(train)
        assert auto.choice_.kind == "intermittent"
        band = auto.predict(28, [95])
        inside += int(np.sum((actual >= band["lo-95"]) & (actual <= band["hi-95"])))
        total += len(actual)
    assert inside / total >= 0.9
