"""Anomaly pipeline (UC9): resolve product → series → detector → explain → cache. It only detects: the
alerting pipeline sends e-mail, elsewhere.

Default detector, `robust_seasonal`: each point's expected value is the median of the same season position
(e.g. the same weekday) in the `neighbours` seasons before and after it — never the point itself — plus,
with two years of daily history, what the same weekday a year before and after left unexplained (a point
must then be unusual with and without it). The score is the residual over the robust (MAD) spread of the
residuals around it. Two passes: points flagged in the first are replaced by their expected value before
the second, so an anomaly cannot hide another one or inflate the spread. `isolation_forest` (scikit-learn)
is the alternative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Self

import anyio
import numpy as np
from sklearn.ensemble import IsolationForest

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines import SaleLineCache
from salesflow.models.ml import Anomaly, AnomalyRequest, AnomalyResponse, Bucket
from salesflow.services.ml.series import SEASON, Series, SeriesLoader, require_known
from salesflow.services.ml.strategies import FloatArray

PIPELINE = "ml"
MAD_TO_SD = 1.4826  # MAD of a normal distribution × this = its standard deviation
YEAR_IN_WEEKS_DAYS = 364  # 52 weeks: the same weekday a year apart


class RobustSeasonalDetector:
    """Seasonal-median baseline with a robust z-like score (see the module docstring)."""

    name = "robust_seasonal"

    def __init__(
        self,
        *,
        season_length: int = 7,
        neighbours: int = 6,
        threshold: float = 5.5,
        clean_threshold: float = 3.0,
        spread_window: int = 6,
        min_history_seasons: int = 3,
    ) -> None:
        self.season_length = season_length
        self.neighbours = neighbours
        self.threshold = threshold
        self.clean_threshold = clean_threshold
        self.spread_window = spread_window
        self.min_history_seasons = min_history_seasons

    def fit(self, y: FloatArray) -> Self:
        y = np.asarray(y, dtype=np.float64)
        m = self.season_length if len(y) >= 3 * self.season_length else 1
        # Sales are counts: their noise grows with the level. On the Anscombe (square-root) scale it does not,
        # so a 75% drop on a quiet Sunday scores like one on a busy Saturday.
        z = stabilise(y)
        window = self.spread_window * m
        baseline, scale = self._two_passes(z, m, window, np.zeros(len(z)))
        scores = (z - baseline) / scale
        yearly = yearly_component(z - seasonal_baseline(z, m, self.neighbours), m)
        if yearly.any():
            # Flag only what is unusual both for the time of week and for the time of year: a recurring
            # yearly event is expected, and a one-off event last year does not make this year look odd.
            baseline_y, scale_y = self._two_passes(z, m, window, yearly)
            scores_y = (z - baseline_y) / scale_y
            keep = np.abs(scores) <= np.abs(scores_y)
            baseline, scale, scores = (
                np.where(keep, a, b)
                for a, b in ((baseline, baseline_y), (scale, scale_y), (scores, scores_y))
            )
        self.scale_ = scale
        self.scores_ = scores
        self.expected_ = unstabilise(baseline)
        return self

    def _two_passes(
        self, z: FloatArray, m: int, window: int, yearly: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Baseline and spread, suspects of the first pass replaced by their expected value in the second."""
        first = seasonal_baseline(z - yearly, m, self.neighbours) + yearly
        flagged = np.abs(robust_scores(z, first, window=window)) > self.clean_threshold
        cleaned = np.where(flagged, first, z)
        baseline = seasonal_baseline(cleaned - yearly, m, self.neighbours) + yearly
        return baseline, robust_spread(cleaned - baseline, window=window)

    def score(self, y: FloatArray) -> FloatArray:
        return np.asarray(self.scores_, dtype=np.float64)

    def detect(self, y: FloatArray) -> np.ndarray:
        """Flags; the first `min_history_seasons` seasons are never flagged (nothing to judge them by yet)."""
        flags = np.abs(self.score(y)) > self.threshold
        flags[: self.min_history_seasons * self.season_length] = False
        return flags


class IsolationForestDetector:
    """IsolationForest on (value, residual to the seasonal median, season position)."""

    name = "isolation_forest"

    def __init__(self, *, season_length: int = 7, contamination: float = 0.02, random_state: int = 0) -> None:
        self.season_length = season_length
        self.contamination = contamination
        self.random_state = random_state

    def fit(self, y: FloatArray) -> Self:
        y = np.asarray(y, dtype=np.float64)
        m = self.season_length if len(y) >= 3 * self.season_length else 1
        self.expected_ = seasonal_baseline(y, m, 4)
        features = np.column_stack([y, y - self.expected_, np.arange(len(y)) % max(m, 1)])
        forest = IsolationForest(contamination=self.contamination, random_state=self.random_state)
        self.flags_ = forest.fit_predict(features) == -1
        self.scale_ = robust_spread(y - self.expected_, window=8 * m)
        self.scores_ = (y - self.expected_) / self.scale_
        return self

    def score(self, y: FloatArray) -> FloatArray:
        return np.asarray(self.scores_, dtype=np.float64)

    def detect(self, y: FloatArray) -> np.ndarray:
        return np.asarray(self.flags_)


DETECTORS = {"robust_seasonal": RobustSeasonalDetector, "isolation_forest": IsolationForestDetector}


def stabilise(y: FloatArray) -> FloatArray:
    """Anscombe's transform: Poisson counts get a variance close to 1 whatever their mean."""
    return 2 * np.sqrt(np.maximum(y, 0) + 3 / 8)


def unstabilise(z: FloatArray) -> FloatArray:
    return np.maximum((z / 2) ** 2 - 3 / 8, 0)


def yearly_component(residuals: FloatArray, season_length: int) -> FloatArray:
    """What the same weekday 52 weeks before and after left unexplained (their mean, never the point itself).

    With two years of daily history, a yearly event (a December peak, Black Friday) is expected the next
    time instead of being flagged every year; with less, or for other buckets, it is zero.
    """
    n = len(residuals)
    if season_length != 7 or n < 2 * YEAR_IN_WEEKS_DAYS:
        return np.zeros(n)
    others = np.full((2, n), np.nan)
    others[0, YEAR_IN_WEEKS_DAYS:] = residuals[:-YEAR_IN_WEEKS_DAYS]
    others[1, :-YEAR_IN_WEEKS_DAYS] = residuals[YEAR_IN_WEEKS_DAYS:]
    with np.errstate(all="ignore"):
        component: FloatArray = np.nan_to_num(np.nanmean(others, axis=0))
    return component


def seasonal_baseline(y: FloatArray, season_length: int, neighbours: int) -> FloatArray:
    """Median of the same season position in up to `neighbours` seasons on each side, excluding the point
    (neighbours on both sides follow a trend, so a trend does not look like an anomaly)."""
    n = len(y)
    offsets = [k * season_length for k in range(-neighbours, neighbours + 1) if k != 0]
    stacked = np.full((len(offsets), n), np.nan)
    for row, offset in enumerate(offsets):
        source = np.arange(n) + offset
        valid = (source >= 0) & (source < n)
        stacked[row, valid] = y[source[valid]]
    with np.errstate(all="ignore"):
        baseline = np.nanmedian(stacked, axis=0)
    return np.where(np.isnan(baseline), np.nanmedian(y) if n else 0.0, baseline)


def robust_spread(residuals: FloatArray, *, window: int) -> FloatArray:
    """Rolling MAD-based spread of the residuals (centred window), floored so counts near zero stay quiet."""
    n = len(residuals)
    half = max(window // 2, 3)
    spread = np.empty(n)
    for i in range(n):  # n is a few hundred buckets at most; a clear loop beats a clever stride trick here
        around = np.delete(residuals[max(0, i - half) : i + half + 1], min(i, half))
        spread[i] = MAD_TO_SD * np.median(np.abs(around - np.median(around))) if len(around) else 0.0
    floor = 0.5  # on the stabilised scale, Poisson noise has a spread of about 1
    return np.maximum(spread, floor)


def robust_scores(y: FloatArray, expected: FloatArray, *, window: int) -> FloatArray:
    residuals = y - expected
    return residuals / robust_spread(residuals, window=window)


@dataclass(frozen=True)
class Detection:
    anomalies: list[Anomaly]
    threshold: float


def detect_anomalies(series: Series, model: str) -> Detection:
    """Run the detector and explain each flagged bucket (pure; CPU work)."""
    season = SEASON[series.bucket] if series.bucket == Bucket.DAILY else 1
    detector = DETECTORS[model](season_length=season)
    y = series.values
    if len(y) < 14:
        return Detection([], getattr(detector, "threshold", 0.0))
    detector.fit(y)
    flags = detector.detect(y)
    scores = detector.score(y)
    threshold = float(getattr(detector, "threshold", 4.0))
    found = [
        _anomaly(
            series.starts[i], float(y[i]), float(detector.expected_[i]), float(scores[i]), threshold, series
        )
        for i in np.flatnonzero(flags)
    ]
    return Detection(found, threshold)


def _anomaly(
    day: date, value: float, expected: float, score: float, threshold: float, series: Series
) -> Anomaly:
    when = (
        day.strftime("%A %Y-%m-%d")
        if series.bucket == Bucket.DAILY
        else f"the {series.bucket_days} days from {day}"
    )
    if value == 0 and expected > 0:
        kind = "ZERO_DROP"
        text = (
            f"No sales on {when}, although about {expected:.0f} were expected:"
            " a closure, a stock-out or missing data?"
        )
    elif score > 0:
        kind = "HIGH_SPIKE"
        ratio = value / expected if expected > 0 else float("inf")
        times = f"{ratio:.1f}× the" if np.isfinite(ratio) else "far above the"
        text = f"{value:.0f} sold on {when}, {times} {expected:.0f} expected for such a period."
    else:
        kind = "DROP"
        below = (1 - value / expected) * 100
        text = f"Only {value:.0f} sold on {when}, {below:.0f}% below the {expected:.0f} expected."
    severity = "high" if abs(score) >= 2 * threshold or kind == "ZERO_DROP" else "medium"
    return Anomaly(
        date=day,
        value=round(value, 2),
        expected=round(expected, 2),
        score=round(score, 2),
        severity=severity,
        type=kind,
        explanation=text,
    )


class AnomalyService:
    """`POST /ml/anomalies`: detects only; sends nothing."""

    def __init__(self, lines: SaleLineCache, cache: Cache, *, ttl_seconds: int, history_days: int) -> None:
        self.lines = lines
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.loader = SeriesLoader(lines, history_days=history_days)

    async def detect_json(self, request: AnomalyRequest, *, scope: str) -> bytes:
        """Anomalies of the named series as JSON bytes (cached per request and day)."""
        require_known(request.model, DETECTORS)
        today = self.lines.today()
        product = await self.loader.product(request)
        key = cache_key(
            PIPELINE,
            scope,
            kind="anomalies",
            product=product.id if product else "all",
            bucket=request.period,
            metric=request.metric,
            model=request.model,
            today=today,
        )

        async def compute() -> bytes:
            series = await self.loader.series(product, request, today)
            detection = await anyio.to_thread.run_sync(detect_anomalies, series, request.model)
            return (
                AnomalyResponse(
                    scope=request.scope,
                    product_id=product.id if product else None,
                    period=request.period,
                    count=len(detection.anomalies),
                    anomalies=detection.anomalies,
                    product=product,
                    model=request.model,
                    threshold=detection.threshold,
                )
                .model_dump_json()
                .encode()
            )

        return await self.cache.get_or_compute(key, self.ttl_seconds, compute, encode=bytes, decode=bytes)
