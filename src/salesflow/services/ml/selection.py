"""`auto`: classify a series, then pick or combine models by a rolling-origin backtest on its own history.

1. classify: `short` (fewer than `min_history` points: their mean, with Poisson intervals), `sparse` (fewer
   than `min_orders` periods with demand: the mean over them all, a rate, with bands from zero: one bulk
   order is never a daily level),
   `intermittent` (over `intermittent_share` of the periods without demand: Croston SBA / TSB / ADIDA), else
   `smooth`.
2. backtest: for `n_windows` origins (the last `n_windows`·h points, h at a time) each base model is
   fitted once and every candidate combination is scored from those forecasts (MAE scaled by the
   in-sample naive error).
3. choose: the default combination (the mean of Theta and ETS for smooth series) unless a challenger's
   backtest error is under `switch_ratio` of it: a few held-out points are noisy, so the default only gives
   way to a clear winner.
4. refit the chosen members on the (recent) history and forecast; forecasts are never negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from salesflow.models.ml import SeriesKind
from salesflow.services.ml.metrics import mase_scale
from salesflow.services.ml.strategies import (
    FORECASTERS,
    INTERMITTENT_MODELS,
    LONGER_SEASON,
    MSTL,
    Ensemble,
    FloatArray,
    Forecast,
    Forecaster,
    LongerSeasonalNaive,
    ShortHistory,
    Theta,
    checks_bands,
    combine,
    count_intervals,
    finite_history,
    holding_the_mean,
    longer_season_within_reach,
    quantile_floor,
    usable_season,
)

# The first candidate is the default: another must beat it clearly in the series' own backtest. Chosen on
# development data only (docs/benchmarks.md): a M4 Weekly half and the UCI shop's days before the last 28.
# AutoARIMA left the candidates there: within 1.5% of the same accuracy at over twice the cost.
SMOOTH_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("theta", "ets"),
    ("theta",),
    ("ets",),
    ("seasonal_naive",),
)
# A smooth series too short to backtest, with two seasons of history: the median of these, a default that
# beat the mean of Theta and ETS on such series of four development sets (docs/benchmarks.md).
UNTESTED_SEASONAL = ("theta", "ets", "seasonal_naive")
# A challenger replaces the default only with a backtest error under 70% of the default's: chosen on three
# development sets together (the even half of M3 Monthly's development half, M4 Weekly's even half, the UCI
# shop before its last 28 days); 0.8 switched too eagerly on monthly series (docs/benchmarks.md).
SWITCH_RATIO = 0.7
# Fewer periods with demand than this (one or two orders): no level to forecast, only a rate over the history.
MIN_ORDER_DAYS = 3
MEAN_KINDS = (SeriesKind.SHORT, SeriesKind.SPARSE)  # forecast by the mean of the history
INTERMITTENT_CANDIDATES: tuple[tuple[str, ...], ...] = tuple((name,) for name in INTERMITTENT_MODELS)
RECENT_SPREAD_DAYS = 112  # the days whose own spread bounds an intermittent series' bands (16 weeks)
# Seasonal periods looked for when none is given: year of quarters, week of days, year of months, day of
# hours, year of weeks. Quarters joined on the Tourism quarterly development half (docs/benchmarks.md).
CALENDAR_PERIODS = (4, 7, 12, 24, 52)
# What a model fit can raise on a degenerate series (constant, tiny, extreme values); `ModelFitError` (a
# ValueError) wraps what statsforecast raises as a bare Exception.
MODEL_FAILURES = (ValueError, ZeroDivisionError, np.linalg.LinAlgError, FloatingPointError, IndexError)


@dataclass(frozen=True)
class Choice:
    """What `auto` chose for a series, and why (shown to people in the API's `model` block)."""

    kind: SeriesKind
    members: tuple[str, ...]
    reason: str
    scores: dict[str, float] = field(default_factory=dict)  # candidate → backtest error (scaled MAE)
    errors: tuple[float, ...] = ()  # the chosen candidate's backtest errors (actual − forecast)
    # The chosen candidate's forecast of the history's last `horizon` points, fitted without them.
    last_window: tuple[float, ...] = ()


class AutoForecaster:
    """The default strategy (see the module docstring)."""

    name = "auto"

    def __init__(
        self,
        *,
        season_length: int = 7,
        horizon: int = 7,
        n_windows: int = 2,
        max_history: int = 300,
        min_history: int = 14,
        min_orders: int = MIN_ORDER_DAYS,
        intermittent_share: float = 0.5,
        switch_ratio: float = SWITCH_RATIO,
        members: tuple[str, ...] | None = None,
        smooth_candidates: tuple[tuple[str, ...], ...] = SMOOTH_CANDIDATES,
    ) -> None:
        self.season_length = season_length
        self.horizon = horizon
        self.n_windows = n_windows
        self.max_history = max_history
        self.min_history = min_history
        self.min_orders = min_orders
        self.intermittent_share = intermittent_share
        self.switch_ratio = switch_ratio
        self.members = members  # given: no selection, these models (e.g. to backtest an earlier choice)
        self.smooth_candidates = smooth_candidates

    def fit(self, y: FloatArray) -> Self:
        y = finite_history(y)
        period = self.season_length if self.season_length > 1 else detect_season(y)
        # A shop closed on a weekday sells nothing then: model the open days (their own, shorter season)
        # and forecast zero for the closed ones, instead of smearing the zeros over the whole week.
        self.closed_ = closed_positions(y, period)
        self.n_obs_ = len(y)
        self.counts_ = bool(len(y)) and bool(np.all(y >= 0) and np.all(y == np.round(y)))
        self.period_ = period
        if self.closed_:
            y = y[~np.isin(np.arange(len(y)) % period, self.closed_)]
            self.period_ = max(period - len(self.closed_), 1)
        longer = LONGER_SEASON.get(self.period_, 0)
        # A second season (a week of hours, a year of days) needs three of its cycles kept, when known.
        y = y[-max(self.max_history, 3 * longer if self._two_seasons_fit(len(y)) else 0) :]
        self.choice_ = self._choose(y)
        self.recent_ = y[-RECENT_SPREAD_DAYS:]
        if self.choice_.kind in MEAN_KINDS:
            self.model_: Forecaster = ShortHistory().fit(y)
        else:
            members = [FORECASTERS[name](self.period_) for name in self.choice_.members]
            # Too few out-of-sample errors to check the bands against (a series too short to backtest, a
            # few years or quarters): a combination's band spans its members' bands. The median of their
            # 95% bands held 87.7% of the tourism competition's yearly values and 90.0% of its quarterly
            # ones, spanning 92.6% and 93.3% (development halves; docs/benchmarks.md, "Bands nothing checks").
            spanning = not checks_bands(self.choice_.errors)
            try:
                model = Ensemble(members, spanning=spanning) if len(members) > 1 else members[0]
                self.model_ = model.fit(y)
            except MODEL_FAILURES as exc:
                self.model_ = fallback_model(y, self.period_)
                reason = (
                    f"{self.choice_.reason}; it failed on this series ({type(exc).__name__}):"
                    f" {self.model_.name}"
                )
                self.choice_ = Choice(self.choice_.kind, (self.model_.name,), reason, self.choice_.scores)
        return self

    def predict(self, h: int, level: Sequence[int] = ()) -> Forecast:
        if not self.closed_:
            return {
                key: np.maximum(values, 0.0)
                for key, values in holding_the_mean(self._predict(h, level)).items()
            }
        full_period = self.period_ + len(self.closed_)
        is_open = ~np.isin(np.arange(self.n_obs_, self.n_obs_ + h) % full_period, self.closed_)
        forecast = holding_the_mean(self._predict(int(is_open.sum()), level))
        spread: Forecast = {}
        for key, values in forecast.items():
            spread[key] = np.zeros(h)
            spread[key][is_open] = np.maximum(values, 0.0)
        return spread

    def _predict(self, h: int, level: Sequence[int]) -> Forecast:
        forecast = self.model_.predict(h, level)
        if not level or self.choice_.kind == SeriesKind.SHORT:
            return forecast
        if self.choice_.kind == SeriesKind.SPARSE:
            # Most days bring no order at all: the band starts at zero, whatever a Poisson count says.
            return forecast | {f"lo-{lv}": np.zeros(h) for lv in level}
        if self.choice_.kind == SeriesKind.INTERMITTENT:
            # A Poisson band around a Croston rate misses lumpy demand's bulk orders and its zero days.
            return quantile_floor(forecast, level, self.recent_)
        if self.counts_:
            # Counts are skewed: the models' symmetric bands miss high days and cover zero days too easily.
            forecast = {"mean": forecast["mean"], **count_intervals(forecast, level)}
        # Never narrower than the errors the chosen model made out of sample on this very series.
        return quantile_floor(forecast, level, np.asarray(self.choice_.errors), around=forecast["mean"])

    def _two_seasons_fit(self, n_obs: int) -> bool:
        longer = LONGER_SEASON.get(self.period_, 0)
        return longer > 0 and n_obs >= 2 * longer + self.n_windows * self.horizon

    def _a_short_level(self, y: FloatArray) -> bool:
        """A short history without a period at zero that spans the horizon: a level with its trend (a few
        years of a yearly series), which the default models carry far better than the mean does. Days of
        sales with gaps, or a horizon longer than the history, keep the mean (docs/benchmarks.md)."""
        return len(y) >= self.horizon and bool(np.all(y > 0))

    def _choose(self, y: FloatArray) -> Choice:
        short = (ShortHistory.name,)
        if len(y) < self.min_history and not self._a_short_level(y):
            return Choice(SeriesKind.SHORT, short, f"only {len(y)} periods of history: their mean")
        if self.members == short:
            return Choice(SeriesKind.SHORT, short, "their mean, as given")
        orders = int(np.count_nonzero(y))
        if 0 < orders < self.min_orders:
            return Choice(
                SeriesKind.SPARSE,
                short,
                f"only {orders} of {len(y)} periods with sales: too few to forecast a level;"
                " their average rate over the whole history",
            )
        intermittent = float(np.mean(y == 0)) > self.intermittent_share
        kind = SeriesKind.INTERMITTENT if intermittent else SeriesKind.SMOOTH
        if self.members is not None:
            return Choice(kind, self.members, f"{'+'.join(self.members)} as given")
        candidates = INTERMITTENT_CANDIDATES if intermittent else self.smooth_candidates
        bases = members_of(candidates)
        if not intermittent and self._two_seasons_fit(len(y)):
            # Two seasons (hours in a day and a week, days in a week and a year), two cycles of each known
            # before the backtest: MSTL competes too.
            mstl, theta = MSTL.name, Theta.name
            bases, candidates = (*bases, mstl), (*candidates, (mstl,), (mstl, theta))
            if longer_season_within_reach(self.period_, self.horizon):
                # The last week of hours repeated, alone and with MSTL: a rhythm the day's models miss.
                week = LongerSeasonalNaive.name
                bases, candidates = (*bases, week), (*candidates, (week,), (mstl, week))
        h = self.horizon
        if len(y) < self.min_history + self.n_windows * h:
            if kind == SeriesKind.SMOOTH and usable_season(self.period_, len(y)) > 1:
                return Choice(
                    kind,
                    UNTESTED_SEASONAL,
                    f"{kind} series, too short to backtest: the median of {', '.join(UNTESTED_SEASONAL)}",
                )
            default = candidates[0]
            return Choice(
                kind, default, f"{kind} series, too short to backtest: the default {'+'.join(default)}"
            )
        measured = backtest_errors(
            y,
            bases,
            candidates,
            season_length=self.period_,
            h=h,
            n_windows=self.n_windows,
        )
        scores = measured.scaled_mae
        preferred = "+".join(candidates[0])
        best = min(scores, key=scores.__getitem__)
        if best != preferred and scores[best] < self.switch_ratio * scores[preferred]:
            chosen = best
            reason = (
                f"{kind} series: {best} beat {preferred} in the backtest"
                f" (scaled error {scores[best]:.3f} vs {scores[preferred]:.3f})"
            )
        else:
            chosen = preferred
            margin = f"{1 - self.switch_ratio:.0%}"
            reason = f"{kind} series: {preferred} (best in the backtest or within {margin} of it)"
        members = tuple(chosen.split("+"))
        return Choice(kind, members, reason, scores, measured.errors[chosen], measured.last_window[chosen])


def members_of(candidates: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """Every model the candidates combine, each once, in order."""
    return tuple(dict.fromkeys(name for candidate in candidates for name in candidate))


def fallback_model(y: FloatArray, period: int) -> Forecaster:
    """What is left when the chosen models fail: seasonal naive, else the mean."""
    try:
        return FORECASTERS["seasonal_naive"](period).fit(y)
    except MODEL_FAILURES:
        return ShortHistory().fit(y)


def closed_positions(y: FloatArray, period: int, seasons: int = 8) -> list[int]:
    """Season positions (e.g. weekdays) with no demand in each of the last `seasons` seasons, when the
    other positions do sell: the shop is closed then."""
    if period < 2 or len(y) < seasons * period:
        return []
    recent = y[-seasons * period :]
    positions = np.arange(len(y) - seasons * period, len(y)) % period
    closed = [p for p in range(period) if not np.any(recent[positions == p])]
    if not closed or len(closed) == period:
        return []
    open_days_sell = np.mean(recent[~np.isin(positions, closed)] > 0) > 0.8
    return closed if open_days_sell else []


def detect_season(y: FloatArray, candidates: Sequence[int] = CALENDAR_PERIODS) -> int:
    """The calendar period with the strongest significant autocorrelation (90%, as Theta's own test), or 1.

    Used when the caller knows no season (M4 scores Weekly with m = 1, yet weekly sales have a yearly cycle).
    """
    best, best_acf = 1, 0.0
    if len(y) < 3:
        return best
    x = np.diff(y)
    x = x - x.mean()
    denominator = float(np.dot(x, x))
    if denominator <= 0:
        return 1
    for period in candidates:
        if len(x) < 3 * period:
            continue
        acf = np.array([np.dot(x[: len(x) - k], x[k:]) / denominator for k in range(1, period + 1)])
        limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / len(x))
        if acf[-1] > limit and acf[-1] > best_acf:
            best, best_acf = period, float(acf[-1])
    return best


@dataclass(frozen=True)
class BacktestErrors:
    scaled_mae: dict[str, float]  # candidate → mean absolute error over the naive in-sample error
    errors: dict[str, tuple[float, ...]]  # candidate → every error (actual − forecast), in the series' units
    last_window: dict[str, tuple[float, ...]]  # candidate → its forecast of the last window


def backtest_errors(
    y: FloatArray,
    bases: Sequence[str],
    candidates: Sequence[tuple[str, ...]],
    *,
    season_length: int,
    h: int,
    n_windows: int,
) -> BacktestErrors:
    """Each candidate's errors over `n_windows` rolling origins (base models fitted once per origin)."""
    errors: dict[str, list[float]] = {"+".join(c): [] for c in candidates}
    signed: dict[str, list[FloatArray]] = {"+".join(c): [] for c in candidates}
    last: dict[str, tuple[float, ...]] = {}
    for window in range(n_windows, 0, -1):
        cut = len(y) - window * h
        train, actual = y[:cut], y[cut : cut + h]
        scale = mase_scale(train, season_length) or mase_scale(train, 1) or 1.0
        forecasts = {name: _safe_forecast(name, train, h, season_length) for name in bases}
        for candidate in candidates:
            mean = np.maximum(combine([forecasts[name] for name in candidate])["mean"], 0)
            errors["+".join(candidate)].append(float(np.mean(np.abs(actual - mean))) / scale)
            signed["+".join(candidate)].append(actual - mean)
            last["+".join(candidate)] = tuple(mean.tolist())
    return BacktestErrors(
        scaled_mae={name: float(np.mean(values)) for name, values in errors.items()},
        errors={name: tuple(np.concatenate(values).tolist()) for name, values in signed.items()},
        last_window=last,
    )


def _safe_forecast(name: str, train: FloatArray, h: int, season_length: int) -> Forecast:
    """A base model's forecast; a model that fails on this series scores as its naive forecast would."""
    try:
        return FORECASTERS[name](season_length).fit(train).predict(h)
    except MODEL_FAILURES:
        return {"mean": np.full(h, train[-1] if len(train) else 0.0)}
