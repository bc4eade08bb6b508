"""Forecasting strategies, scikit-learn style: parameters in `__init__`, `fit(y)` → self, `predict(h, level)`.

`predict` returns a `Forecast`: `{"mean": ..., "lo-80": ..., "hi-80": ...}` (statsforecast's shape), every
array of shape (h,). Strategies are looked up by name in `FORECASTERS`; `auto` (selection.py) picks
among them.
statsforecast does the heavy models (AutoETS, DynamicOptimizedTheta, AutoARIMA, Croston SBA, TSB, ADIDA).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Forecast = dict[str, FloatArray]

# AutoETS supports seasons up to 24; longer ones are left to Theta.
MAX_ETS_SEASON = 24
# The season within which a season repeats: hours of a day within the week's 168 hours, days of a week
# within the year's 365 days (MSTL takes whole periods; a year is 365.25 days, the drift is a day in 4 years).
LONGER_SEASON = {24: 168, 7: 365}
# A longer season is within reach of a forecast when it spans at most this many horizons: a week of hours for
# 48 hours ahead, not a year of days for 14 or 28 (chosen on the hourly development set, docs/benchmarks.md).
LONGER_SEASON_HORIZONS = 4
# Values beyond this are clipped: squares of larger ones overflow in the models' variance estimates.
MAX_ABS_VALUE = 1e15
POISSON_EXACT_UP_TO = 1e7
MIN_ERRORS_FOR_BANDS = 20  # fewer past errors say too little about a band's tails


# statsforecast (with numba, statsmodels and scikit-learn behind it) and scipy.stats cost ~3 s to import:
# loaded by the first fit, so that every process that never forecasts (CLI, API workers' start) starts fast.
@functools.cache
def sf() -> Any:
    """statsforecast's model classes."""
    from statsforecast import models

    return models


@functools.cache
def stats() -> Any:
    """scipy's distributions."""
    from scipy import stats as distributions

    return distributions


class ModelFitError(ValueError):
    """A model could not be fitted to this series (statsforecast raises bare `Exception`s for some)."""


def finite_history(y: FloatArray) -> FloatArray:
    """The series the models can take: leading and trailing missing or infinite values dropped, inner ones
    interpolated linearly, magnitudes clipped to `MAX_ABS_VALUE`. Negative values (returns) are kept."""
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(y)
    if not finite.any():
        return np.zeros(0)
    kept = np.flatnonzero(finite)
    y = y[kept[0] : kept[-1] + 1]
    finite = np.isfinite(y)
    if not finite.all():
        positions = np.arange(len(y))
        y = np.interp(positions, positions[finite], y[finite])
    return np.clip(y, -MAX_ABS_VALUE, MAX_ABS_VALUE)


def usable_season(season: int, n_obs: int) -> int:
    """The season when two full seasons are known, else none (1): one season copied would repeat its
    accidents."""
    return season if season > 1 and n_obs >= 2 * season else 1


def holding_the_mean(forecast: Forecast) -> Forecast:
    """Every band widened to hold the mean, and a bound no model could compute (NaN from four equal values of
    1e14) taken as the mean. A combination's bands are combined apart from its mean, and a count's band
    around a wildly overdispersed forecast (one bulk order after days of two) is 0 to 0: near a perfect
    trend, or on such a series, the mean fell outside its own band."""
    mean = forecast["mean"]
    held = dict(forecast)
    for key, band in forecast.items():
        known = np.where(np.isfinite(band), band, mean)
        if key.startswith("lo-"):
            held[key] = np.minimum(known, mean)
        elif key.startswith("hi-"):
            held[key] = np.maximum(known, mean)
    return held


def longer_season_within_reach(season_length: int, horizon: int) -> int:
    """The longer season (`LONGER_SEASON`) when it spans at most `LONGER_SEASON_HORIZONS` horizons, else 0."""
    longer = LONGER_SEASON.get(season_length, 0)
    return longer if longer <= LONGER_SEASON_HORIZONS * horizon else 0


class Forecaster(Protocol):
    name: str

    def fit(self, y: FloatArray) -> Self: ...

    def predict(self, h: int, level: Sequence[int] = ()) -> Forecast: ...


class _StatsForecastModel:
    """Shell around one statsforecast model: the maths lives there, this keeps our interface."""

    name = "statsforecast"
    season_length = 1

    def _build(self, season: int) -> Any:
        raise NotImplementedError

    def fit(self, y: FloatArray) -> Self:
        season = usable_season(self.season_length, len(y))
        try:
            self.model_ = self._build(season).fit(y=np.asarray(y, dtype=np.float64))
        except Exception as exc:  # statsforecast raises bare Exception / NotImplementedError on some series
            raise ModelFitError(f"{self.name}: {exc}") from exc
        return self

    def predict(self, h: int, level: Sequence[int] = ()) -> Forecast:
        raw = self.model_.predict(h=h, level=list(level)) if level else self.model_.predict(h=h)
        return holding_the_mean({key: np.asarray(value, dtype=np.float64) for key, value in raw.items()})


class SeasonalNaive(_StatsForecastModel):
    """Repeat the last season (the baseline every other strategy must beat); with fewer than two full
    seasons of history, the last value (one season copied would repeat its accidents)."""

    name = "seasonal_naive"

    def __init__(self, *, season_length: int = 7) -> None:
        self.season_length = season_length

    def _build(self, season: int) -> Any:
        return sf().SeasonalNaive(season_length=season)


class LongerSeasonalNaive(SeasonalNaive):
    """Repeat the last longer season (the week of an hourly series): the week's rhythm that a model of the
    day's season cannot carry."""

    name = "longer_seasonal_naive"

    def __init__(self, *, season_length: int = 24) -> None:
        super().__init__(season_length=LONGER_SEASON.get(season_length, season_length))


class ETS(_StatsForecastModel):
    """Exponential smoothing with the error/trend/season form chosen by AICc (AutoETS)."""

    name = "ets"

    def __init__(self, *, season_length: int = 7) -> None:
        self.season_length = season_length

    def _build(self, season: int) -> Any:
        return sf().AutoETS(season_length=season if season <= MAX_ETS_SEASON else 1)


class Theta(_StatsForecastModel):
    """Dynamic optimised Theta (DOTM), seasonally adjusted when a season is detected."""

    name = "theta"

    def __init__(self, *, season_length: int = 7) -> None:
        self.season_length = season_length

    def _build(self, season: int) -> Any:
        return sf().DynamicOptimizedTheta(season_length=season)


class ARIMA(_StatsForecastModel):
    """Auto ARIMA (Hyndman-Khandakar stepwise search), non-seasonal: Theta and ETS carry the season.

    A seasonal search costs about 6x the fit time (1.1 s vs 0.19 s on 400 daily points) and did worse on the
    daily retail backtest (docs/benchmarks.md). Available on request; not among `auto`'s candidates.
    """

    name = "arima"

    def __init__(self, *, season_length: int = 7) -> None:
        self.season_length = season_length

    def _build(self, season: int) -> Any:
        return sf().AutoARIMA(season_length=1)


class MSTL(_StatsForecastModel):
    """Several seasons at once (MSTL: a season of days within a season of weeks), the trend and remainder by
    ETS. Each season is used only with two full cycles of history; with none, plain ETS."""

    name = "mstl"

    def __init__(self, *, season_length: int = 24) -> None:
        self.season_length = season_length

    def fit(self, y: FloatArray) -> Self:
        self.seasons_ = [
            m
            for m in (self.season_length, LONGER_SEASON.get(self.season_length, 0))
            if usable_season(m, len(y)) > 1
        ]
        return super().fit(y)

    def _build(self, season: int) -> Any:
        if not self.seasons_:
            return sf().AutoETS(season_length=1)
        return sf().MSTL(season_length=self.seasons_, trend_forecaster=sf().AutoETS(model="ZZN"))


class Intermittent:
    """Sporadic demand: Croston SBA, TSB or ADIDA for the rate; Poisson intervals around it.

    `method` is the model's registry name (`FORECASTERS`), so that the model can be rebuilt by its name."""

    def __init__(self, *, method: str = "croston_sba") -> None:
        self.method = method
        self.name = method

    def fit(self, y: FloatArray) -> Self:
        try:
            self.model_ = INTERMITTENT_MODELS[self.method]().fit(y=np.asarray(y, dtype=np.float64))
        except Exception as exc:  # as in `_StatsForecastModel.fit`
            raise ModelFitError(f"{self.method}: {exc}") from exc
        return self

    def predict(self, h: int, level: Sequence[int] = ()) -> Forecast:
        mean = np.maximum(np.asarray(self.model_.predict(h=h)["mean"], dtype=np.float64), 0.0)
        return {"mean": mean, **poisson_intervals(mean, level)}


INTERMITTENT_MODELS: dict[str, Callable[[], Any]] = {
    "croston_sba": lambda: sf().CrostonSBA(),
    "tsb": lambda: sf().TSB(alpha_d=0.2, alpha_p=0.2),
    "adida": lambda: sf().ADIDA(),
}


class LinearTrend:
    """The earlier backend's model (least squares on the time index), kept for comparison."""

    name = "linear_trend"

    def fit(self, y: FloatArray) -> Self:
        t = np.arange(len(y), dtype=np.float64)
        slope, intercept = np.polyfit(t, y, 1) if len(y) > 1 else (0.0, float(np.mean(y)))
        self.slope_, self.intercept_ = float(slope), float(intercept)
        self.n_obs_ = len(y)
        self.sigma_ = float(np.std(y - (self.intercept_ + self.slope_ * t))) if len(y) > 2 else 0.0
        return self

    def predict(self, h: int, level: Sequence[int] = ()) -> Forecast:
        mean = self.intercept_ + self.slope_ * np.arange(self.n_obs_, self.n_obs_ + h, dtype=np.float64)
        return {"mean": mean, **normal_intervals(mean, np.full(h, self.sigma_), level)}


class ShortHistory:
    """Too little history for a model: the mean of what there is, with count-like (Poisson) intervals."""

    name = "short_history_mean"

    def fit(self, y: FloatArray) -> Self:
        self.level_ = float(np.mean(y)) if len(y) else 0.0
        return self

    def predict(self, h: int, level: Sequence[int] = ()) -> Forecast:
        mean = np.full(h, self.level_)
        return {"mean": mean, **poisson_intervals(mean, level)}


class Ensemble:
    """The median of its members' forecasts and interval bounds, the mean of two; with `spanning`, each band
    runs from the lowest member's bound to the highest's (see `combine`)."""

    def __init__(self, members: Sequence[Forecaster], *, spanning: bool = False) -> None:
        self.members = list(members)
        self.spanning = spanning
        self.name = "+".join(member.name for member in self.members)

    def fit(self, y: FloatArray) -> Self:
        for member in self.members:
            member.fit(y)
        return self

    def predict(self, h: int, level: Sequence[int] = ()) -> Forecast:
        return combine([member.predict(h, level) for member in self.members], spanning=self.spanning)


def combine(forecasts: Sequence[Forecast], *, spanning: bool = False) -> Forecast:
    """The median of forecasts key by key (keys present in every forecast): the mean of two; of three, the
    middle one, so that one model gone wrong on a short history does not pull the forecast. With `spanning`,
    each band runs from the lowest lower bound to the highest upper bound instead: each model's band is what
    that model believes, and where the models disagree, either may be right."""
    keys = set.intersection(*(set(f) for f in forecasts))
    combined: Forecast = {}
    for key in keys:
        values = np.array([f[key] for f in forecasts])
        if spanning and key.startswith("lo-"):
            combined[key] = values.min(axis=0)
        elif spanning and key.startswith("hi-"):
            combined[key] = values.max(axis=0)
        else:
            combined[key] = np.median(values, axis=0)
    return combined


def poisson_intervals(mean: FloatArray, level: Sequence[int]) -> Forecast:
    """Central intervals of a Poisson count with the given mean, per step."""
    bounds: Forecast = {}
    mean = np.maximum(mean, 1e-9)
    large = (
        mean > POISSON_EXACT_UP_TO
    )  # scipy's quantile gives up there; the normal approximation is exact enough
    for lv in level:
        tail = (1 - lv / 100) / 2
        z = float(stats().norm.ppf(1 - tail))
        exact_lo = stats().poisson.ppf(tail, np.where(large, 1.0, mean))
        exact_hi = stats().poisson.ppf(1 - tail, np.where(large, 1.0, mean))
        bounds[f"lo-{lv}"] = np.where(large, mean - z * np.sqrt(mean), exact_lo).astype(np.float64)
        # A rare count (a rate of 0.04 a day) has an upper quantile of 0: the band still holds its mean.
        bounds[f"hi-{lv}"] = np.maximum(np.where(large, mean + z * np.sqrt(mean), exact_hi), mean)
    return bounds


def checks_bands(errors: Sequence[float] | FloatArray) -> bool:
    """Whether a sample of past errors is large enough to say anything about a band's tails."""
    return len(errors) >= MIN_ERRORS_FOR_BANDS


def quantile_floor(
    forecast: Forecast, level: Sequence[int], sample: FloatArray, *, around: FloatArray | float = 0.0
) -> Forecast:
    """Each band at least as wide as the same quantiles of `sample`, placed `around` (e.g. the mean, for past
    out-of-sample errors: a split-conformal floor under the model's own band; nothing, for recent values of
    lumpy demand, whose zero days and bulk orders are the spread). Too small a sample says nothing."""
    if not checks_bands(sample):
        return forecast
    out = dict(forecast)
    for lv in level:
        tail = (1 - lv / 100) / 2
        low, high = np.quantile(sample, [tail, 1 - tail])
        out[f"lo-{lv}"] = np.minimum(forecast[f"lo-{lv}"], around + low)
        out[f"hi-{lv}"] = np.maximum(forecast[f"hi-{lv}"], around + high)
    return out


def count_intervals(forecast: Forecast, level: Sequence[int]) -> Forecast:
    """Intervals of a count with the forecast's mean and the spread of its upper band (negative binomial;
    Poisson when that spread is smaller than a count's own): skewed like sales, never below zero."""
    mean = np.maximum(forecast["mean"], 1e-9)
    widest = max(level)
    z = float(stats().norm.ppf(0.5 + widest / 200))
    variance = ((forecast[f"hi-{widest}"] - forecast["mean"]) / z) ** 2
    overdispersed = variance > mean * 1.0001
    # var = mean + mean² / r: r successes, success probability r / (r + mean)
    r = np.where(overdispersed, mean**2 / np.maximum(variance - mean, 1e-12), 1.0)
    p = r / (r + mean)
    poisson = poisson_intervals(mean, level)
    large = mean > POISSON_EXACT_UP_TO  # there the skew is nothing: the model's own band stays
    bounds: Forecast = {}
    for lv in level:
        tail = (1 - lv / 100) / 2
        for key, q in ((f"lo-{lv}", tail), (f"hi-{lv}", 1 - tail)):
            skewed = np.where(overdispersed, stats().nbinom.ppf(q, r, p), poisson[key])
            bounds[key] = np.where(large, forecast[key], skewed).astype(np.float64)
    return bounds


def normal_intervals(mean: FloatArray, sd: FloatArray, level: Sequence[int]) -> Forecast:
    bounds: Forecast = {}
    for lv in level:
        z = float(stats().norm.ppf(0.5 + lv / 200))
        bounds[f"lo-{lv}"], bounds[f"hi-{lv}"] = mean - z * sd, mean + z * sd
    return bounds


def _intermittent(method: str, season_length: int) -> Forecaster:
    return Intermittent(method=method)


FORECASTERS: dict[str, Callable[[int], Forecaster]] = {
    "seasonal_naive": lambda m: SeasonalNaive(season_length=m),
    "ets": lambda m: ETS(season_length=m),
    "theta": lambda m: Theta(season_length=m),
    "arima": lambda m: ARIMA(season_length=m),
    MSTL.name: lambda m: MSTL(season_length=m),
    LongerSeasonalNaive.name: lambda m: LongerSeasonalNaive(season_length=m),
    **{name: functools.partial(_intermittent, name) for name in INTERMITTENT_MODELS},
    "linear_trend": lambda m: LinearTrend(),
}
