"""One model learned across a set of series (cross-learning), to average with each series' own `auto`.

A series alone has a few dozen points to learn from; a set of them shares shapes (a season's form, how a
trend bends, how a jump settles) that one LightGBM model learns from windows of all of them at once: each
window's last `window` values, scaled by their mean and logged, with the step ahead and the value one season
before it (and one longer season before, the week of an hourly series, when the window holds it) as
features; the target is the scaled value that many steps on (its log for a set of positive series).
Windows and their steps are sampled (seeded) up to a fixed budget, so the cost does not grow with the set.

Chosen on development data only (docs/benchmarks.md, "Forecasts learned across series"): the even half of M3
Monthly's development half, M4 Weekly's even half and the UCI shop's products before their last 28 days. The
mean with `auto` beat `auto` alone on all three; the pooled model alone did not.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from salesflow.models.ml import SeriesKind
from salesflow.services.ml.strategies import FloatArray, Forecast, longer_season_within_reach

# Scaled values under this are taken as this before the log (a day without sales is a small level, not −∞).
FLOOR = 1e-3
# A set with more zeros than this among its targets is learned on its scaled values with a Tweedie loss (as
# retail forecasters learn daily sales), not on their logs: the log of a day without sales is the floor's, and
# on the UCI products (a third of their days without sales) the logged model forecast 18% of the units they
# had sold in the 28 days before. Sets of positive series (M3, M4) keep the log, better on them.
MAX_ZERO_SHARE_FOR_LOG = 0.05
TWEEDIE_VARIANCE_POWER = 1.5  # LightGBM's default; 1.2 scored the same on the UCI development split
# The budget of one fit: windows sampled from the whole set, each with a few of its steps ahead.
MAX_WINDOWS = 20_000
STEPS_PER_WINDOW = 4
# Fewer windows than this (a set of a few short series): nothing shared to learn, no pooled forecast.
MIN_WINDOWS = 500
MIN_SERIES = 10
NAME = "pooled"
# The series whose forecast is averaged with the pooled one: on the UCI products, averaging intermittent ones
# too was worse for the 50 best sellers (MASE 1.232 vs 1.207); short and sparse ones keep their plain mean.
POOLED_KINDS = frozenset({SeriesKind.SMOOTH})


@functools.cache
def lightgbm() -> Any:
    """LightGBM, imported by the first fit (as statsforecast is)."""
    import lightgbm

    return lightgbm


class PooledForecaster:
    """`fit(series)` on a set, then `predict(series)`: each series' next `horizon` points from its last
    `window` (by default the horizon or the season, whichever is longer, or a longer season within reach)."""

    name = NAME

    def __init__(
        self,
        *,
        horizon: int,
        season_length: int = 1,
        window: int | None = None,
        max_windows: int = MAX_WINDOWS,
        steps_per_window: int = STEPS_PER_WINDOW,
        n_estimators: int = 200,
        random_state: int = 0,
    ) -> None:
        self.horizon = horizon
        self.season_length = season_length
        self.window = window
        self.max_windows = max_windows
        self.steps_per_window = steps_per_window
        self.n_estimators = n_estimators
        self.random_state = random_state

    @property
    def window_(self) -> int:
        # A week of hours: on the hourly development set (`bench.hourly_dev_set`, even half) OWA 0.786 with
        # a week's window vs 0.801 with 48 hours. A year of days is out of reach (no bounded cost).
        longer = longer_season_within_reach(self.season_length, self.horizon)
        return self.window or max(self.horizon, self.season_length, longer)

    def fit(self, series: Sequence[FloatArray]) -> Self:
        """Learn from the set; `fitted_` is False when it has too few series or windows to learn from."""
        rng = np.random.default_rng(self.random_state)
        width = self.window_
        # Window k of series i ends at width + k; sampled by index, never listed (M4 Daily has millions).
        counts = np.array([max(len(y) - width, 0) for y in series], dtype=np.int64)
        self.windows_ = int(counts.sum())
        self.fitted_ = self.windows_ >= MIN_WINDOWS and int((counts > 0).sum()) >= MIN_SERIES
        if not self.fitted_:
            return self
        picked = np.arange(self.windows_)
        if self.windows_ > self.max_windows:
            picked = rng.choice(self.windows_, self.max_windows, replace=False)
        ends = np.cumsum(counts)
        owners = np.searchsorted(ends, picked, side="right")
        rows, ratios, kept = [], [], 0
        for i, k in zip(owners.tolist(), (picked - (ends - counts)[owners]).tolist(), strict=True):
            y, t = series[i], width + k
            logged, scale = self._scaled(y[t - width : t])
            if scale is None:
                continue
            kept += 1
            # A window near the end has fewer steps ahead known: its steps are drawn from those.
            known = min(self.horizon, len(y) - t)
            for step in rng.choice(known, min(self.steps_per_window, known), replace=False):
                rows.append(self._features(logged, int(step)))
                ratios.append(y[t + step] / scale)
        if kept < MIN_WINDOWS:  # windows with sales: a set that has hardly sold (a new shop) has none
            self.fitted_ = False
            return self
        target = np.asarray(ratios)
        self.logged_ = float(np.mean(target == 0)) <= MAX_ZERO_SHARE_FOR_LOG
        loss: dict[str, Any] = {}
        if self.logged_:
            target = np.log(np.maximum(target, FLOOR))
        else:
            loss = {"objective": "tweedie", "tweedie_variance_power": TWEEDIE_VARIANCE_POWER}
        self.model_ = (
            lightgbm()
            .LGBMRegressor(
                n_estimators=self.n_estimators,
                learning_rate=0.05,
                num_leaves=63,
                subsample=0.8,
                subsample_freq=1,
                colsample_bytree=0.8,
                random_state=self.random_state,
                n_jobs=1,  # runs beside other fits in a worker pool; one thread also keeps it deterministic
                verbose=-1,
                **loss,
            )
            .fit(np.asarray(rows), target)
        )
        return self

    def predict(self, series: Sequence[FloatArray], h: int | None = None) -> list[FloatArray | None]:
        """Each series' next `h` points (by default `horizon`; never negative), or None for a series too
        short to fill a window or without sales in it. Steps beyond `horizon` are read as its last (trees do
        not extrapolate), so that a longer forecast begins as a shorter one does."""
        width, steps = self.window_, h or self.horizon
        forecasts: list[FloatArray | None] = [None] * len(series)
        if not self.fitted_:
            return forecasts
        scaled = {i: self._scaled(y[-width:]) for i, y in enumerate(series) if len(y) >= width}
        known = {i: (logged, scale) for i, (logged, scale) in scaled.items() if scale is not None}
        if known:  # one call for the whole set: a call per series costs more than its trees
            rows = [self._features(logged, step) for logged, _ in known.values() for step in range(steps)]
            predicted = self.model_.predict(np.asarray(rows))  # a Tweedie model predicts values, not logs
            ahead = (np.exp(predicted) if self.logged_ else predicted).reshape(len(known), steps)
            for (i, (_, scale)), values in zip(known.items(), ahead, strict=True):
                forecasts[i] = np.maximum(values * scale, 0.0)
        return forecasts

    def _scaled(self, window: FloatArray) -> tuple[FloatArray, float | None]:
        """The window over its mean, logged; no scale for a window without a positive mean (no sales in it:
        no level for the model's shapes, and any fixed scale would make units matter)."""
        mean = float(np.mean(window))
        if not mean > 0:
            return window, None
        return np.log(np.maximum(window / mean, FLOOR)), mean

    def _features(self, logged: FloatArray, step: int) -> FloatArray:
        m = self.season_length
        season_before = logged[len(logged) - m + step % m] if 1 < m <= len(logged) else logged[-1]
        features = [step, season_before]
        # The same hour a week before, when the window holds the week: found by position alone, the trees
        # missed it (hourly development set, even half: pooled alone OWA 0.790 with it vs 0.882 without).
        longer = longer_season_within_reach(m, self.horizon)
        if 0 < longer <= len(logged):
            features.append(logged[len(logged) - longer + step % longer])
        return np.concatenate([logged, features])


def averaged_with(forecast: Forecast, pooled: FloatArray) -> Forecast:
    """The mean of a forecast and a pooled one. The pooled model has no bands of its own: each band spans
    the forecast's and the same band moved with the mean (floored at 0), so the two models' disagreement
    widens it (moved alone, the UCI products' 95% bands held 82.7% of development days instead of 94.8%)."""
    shift = (pooled - forecast["mean"]) / 2
    averaged = {"mean": np.maximum(forecast["mean"] + shift, 0.0)}
    for key, band in forecast.items():
        if key.startswith("lo-"):
            averaged[key] = np.maximum(np.minimum(band, band + shift), 0.0)
        elif key.startswith("hi-"):
            averaged[key] = np.maximum(np.maximum(band, band + shift), 0.0)
    return averaged
