"""Anomaly pipeline (UC9): resolve product → series → detector → explain → cache. It only detects: the
alerting pipeline (services/alerting/) turns detections into alerts and e-mail.

Default detector, `robust_seasonal`, on the Anscombe (square-root) scale where count noise is about 1 at any
level: each point's expected value is the mean of the `neighbours` nearest points at the same season position
(e.g. the same weekday) — both sides, or only before it when `causal` — never the point itself, plus, with two
years of daily history, what the same weekday a year apart left unexplained (a point must then be unusual
with and without it). The score is the residual over a noise scale pooled over months. Two passes: points
flagged in the first are left out of the second, so an anomaly cannot hide another one or inflate the scale.
A flag also needs practical significance (`AnomalyRules`: a minimum share and a minimum gap), and the shop's
calendar makes holidays and closures expected. `isolation_forest` (scikit-learn) is the alternative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Self

import anyio
import numpy as np

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines import SaleLineCache
from salesflow.models.alerts import Severity
from salesflow.models.cache import CachePipeline
from salesflow.models.ml import DEFAULT_ANOMALY_MODEL, Anomaly, AnomalyRequest, AnomalyResponse, Bucket
from salesflow.services.ml.series import SEASON, Series, SeriesLoader, require_known
from salesflow.services.ml.strategies import FloatArray
from salesflow.services.shop_calendar import QuietDay, ShopCalendar

MAD_TO_SD = 1.4826  # MAD of a normal distribution × this = its standard deviation
YEAR_IN_WEEKS_DAYS = 364  # 52 weeks: the same weekday a year apart


class RobustSeasonalDetector:
    """Seasonal-neighbour baseline with a pooled noise scale (see the module docstring).

    `min_change` and `min_gap` add practical significance: a flagged point also differs from its expected
    value by at least that share and that many units. `causal`: each point is judged against the points
    before it only (as the alerts judge yesterday), so a verdict never changes when later days arrive.
    """

    name = DEFAULT_ANOMALY_MODEL

    def __init__(
        self,
        *,
        season_length: int = 7,
        neighbours: int = 12,
        threshold: float = 3.5,
        clean_threshold: float = 3.0,
        spread_points: int = 112,
        min_history_seasons: int = 3,
        min_change: float = 0.0,
        min_gap: float = 0.0,
        causal: bool = False,
    ) -> None:
        self.season_length = season_length
        self.neighbours = neighbours
        self.threshold = threshold
        self.clean_threshold = clean_threshold
        self.spread_points = spread_points
        self.min_history_seasons = min_history_seasons
        self.min_change = min_change
        self.min_gap = min_gap
        self.causal = causal

    def fit(self, y: FloatArray, quiet: np.ndarray | None = None) -> Self:
        """`quiet`: points expected to be low (holidays, closures), left out of every baseline."""
        y = np.asarray(y, dtype=np.float64)
        n = len(y)
        m = self.season_length if n >= 3 * self.season_length else 1
        self.quiet_ = np.zeros(n, dtype=bool) if quiet is None else np.asarray(quiet, dtype=bool)
        # Sales are counts: their noise grows with the level. On the Anscombe (square-root) scale it does not,
        # so a 75% drop on a quiet Sunday scores like one on a busy Saturday.
        z = stabilise(y)
        usable = np.where(self.quiet_, np.nan, z)
        scores, baseline, scale = self._two_passes(z, usable, m, np.zeros(n))
        yearly = yearly_component(z - self._baseline(usable, m)[0], m, causal=self.causal)
        if yearly.any():
            # Flag only what is unusual both for the time of week and for the time of year: a recurring
            # yearly event is expected, and a one-off event last year does not make this year look odd.
            scores_y, baseline_y, scale_y = self._two_passes(z, usable, m, yearly)
            keep = np.abs(scores) <= np.abs(scores_y)
            scores, baseline, scale = (
                np.where(keep, a, b)
                for a, b in ((scores, scores_y), (baseline, baseline_y), (scale, scale_y))
            )
        self.scale_ = scale
        self.scores_ = scores
        self.expected_ = unstabilise(baseline)
        return self

    def _baseline(self, z: FloatArray, m: int) -> tuple[FloatArray, FloatArray]:
        """Mean of the `neighbours` nearest points at the same season position (never the point itself),
        and how many there were."""
        baseline, count = nearest_mean(
            z, neighbour_offsets(m, 3 * self.neighbours, self.causal), self.neighbours
        )
        # A point with no neighbour yet (the first week, judged on nothing) is its own baseline.
        return np.where(np.isnan(baseline), z, baseline), count

    def _two_passes(
        self, z: FloatArray, usable: FloatArray, m: int, yearly: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Scores, baseline and scale; suspects of the first pass are left out of the second."""
        first, count = self._baseline(usable - yearly, m)
        first = first + yearly
        suspects = np.abs((z - first) / self._scale(usable - first, count)) > self.clean_threshold
        cleaned = np.where(suspects, np.nan, usable)
        baseline, count = self._baseline(cleaned - yearly, m)
        baseline = baseline + yearly
        scale = self._scale(cleaned - baseline, count)
        return (z - baseline) / scale, baseline, scale

    def _scale(self, residuals: FloatArray, count: FloatArray) -> FloatArray:
        """The noise scale: root mean square of the nearest `spread_points` residuals, pooled over months
        (a scale from a few weeks is itself too noisy to test against), never below the count noise."""
        offsets = neighbour_offsets(1, 2 * self.spread_points, self.causal)
        mean_square, _ = nearest_mean(residuals**2, offsets, self.spread_points)
        # A count's noise is about 1 on this scale; the baseline's own error adds 1/count of it.
        floor = np.sqrt(1 + 1 / np.maximum(count, 1))
        return np.fmax(np.sqrt(mean_square), floor)

    def score(self, y: FloatArray) -> FloatArray:
        return np.asarray(self.scores_, dtype=np.float64)

    def detect(self, y: FloatArray) -> np.ndarray:
        """Flags: statistically and practically significant; never a drop on a quiet point, never in the
        first `min_history_seasons` seasons (nothing to judge them by yet)."""
        scores = self.score(y)
        flags = significant(
            np.abs(scores) > self.threshold,
            y,
            self.expected_,
            scores,
            quiet=self.quiet_,
            min_change=self.min_change,
            min_gap=self.min_gap,
        )
        flags[: self.min_history_seasons * self.season_length] = False
        return flags


class IsolationForestDetector:
    """IsolationForest on (value, residual to the seasonal median, season position)."""

    name = "isolation_forest"

    def __init__(
        self,
        *,
        season_length: int = 7,
        contamination: float = 0.02,
        random_state: int = 0,
        min_change: float = 0.0,
        min_gap: float = 0.0,
    ) -> None:
        self.season_length = season_length
        self.contamination = contamination
        self.random_state = random_state
        self.min_change = min_change
        self.min_gap = min_gap

    def fit(self, y: FloatArray, quiet: np.ndarray | None = None) -> Self:
        y = np.asarray(y, dtype=np.float64)
        self.quiet_ = np.zeros(len(y), dtype=bool) if quiet is None else np.asarray(quiet, dtype=bool)
        m = self.season_length if len(y) >= 3 * self.season_length else 1
        self.expected_ = seasonal_baseline(y, m, 4)
        features = np.column_stack([y, y - self.expected_, np.arange(len(y)) % max(m, 1)])
        # scikit-learn costs ~2 s to import: loaded by the first caller of this optional detector only.
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(contamination=self.contamination, random_state=self.random_state)
        self.flags_ = forest.fit_predict(features) == -1
        self.scale_ = robust_spread(y - self.expected_, window=8 * m)
        self.scores_ = (y - self.expected_) / self.scale_
        return self

    def score(self, y: FloatArray) -> FloatArray:
        return np.asarray(self.scores_, dtype=np.float64)

    def detect(self, y: FloatArray) -> np.ndarray:
        return significant(
            np.asarray(self.flags_),
            y,
            self.expected_,
            self.scores_,
            quiet=self.quiet_,
            min_change=self.min_change,
            min_gap=self.min_gap,
        )


DETECTORS = {detector.name: detector for detector in (RobustSeasonalDetector, IsolationForestDetector)}


def stabilise(y: FloatArray) -> FloatArray:
    """Anscombe's transform: Poisson counts get a variance close to 1 whatever their mean."""
    return 2 * np.sqrt(np.maximum(y, 0) + 3 / 8)


def unstabilise(z: FloatArray) -> FloatArray:
    return np.maximum((z / 2) ** 2 - 3 / 8, 0)


def too_small_to_matter(y: FloatArray, *, min_gap: float, judged: int, season_length: int = 7) -> bool:
    """True when none of the last `judged` points can be flagged by the causal detector with a `min_gap`:
    no point they are (or their baselines are made of) comes to `min_gap`, so neither an observation nor an
    expected value (a mean of smaller ones) can differ by that much."""
    reach = 3 * RobustSeasonalDetector().neighbours * season_length  # `_baseline` looks at most this far back
    if len(y) >= 2 * YEAR_IN_WEEKS_DAYS or min_gap <= 0:
        return False  # the yearly component reaches further
    return bool(np.max(y[-(reach + judged) :], initial=0.0) < min_gap)


def significant(
    flags: np.ndarray,
    y: FloatArray,
    expected: FloatArray,
    scores: FloatArray,
    *,
    quiet: np.ndarray,
    min_change: float,
    min_gap: float,
) -> np.ndarray:
    """Statistical flags kept only where they matter to a person: a gap of at least `min_gap` units and
    `min_change` of the expected value, and never a drop on a quiet point (a holiday, a closure)."""
    y = np.asarray(y, dtype=np.float64)
    gap = np.abs(y - expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(expected > 0, gap / expected, np.inf)
    return np.asarray(flags & (gap >= min_gap) & (change >= min_change) & ~(quiet & (scores < 0)))


def yearly_component(residuals: FloatArray, season_length: int, *, causal: bool = False) -> FloatArray:
    """What the same weekday 52 weeks before (and after, unless `causal`) left unexplained, their mean.

    With two years of daily history, a yearly event (a December peak, Black Friday) is expected the next
    time instead of being flagged every year; with less, or for other buckets, it is zero.
    """
    n = len(residuals)
    if season_length != 7 or n < 2 * YEAR_IN_WEEKS_DAYS:
        return np.zeros(n)
    others = np.full((2, n), np.nan)
    others[0, YEAR_IN_WEEKS_DAYS:] = residuals[:-YEAR_IN_WEEKS_DAYS]
    if not causal:
        others[1, :-YEAR_IN_WEEKS_DAYS] = residuals[YEAR_IN_WEEKS_DAYS:]
    present = ~np.isnan(others)
    count = present.sum(axis=0)
    total = np.where(present, others, 0.0).sum(axis=0)
    component: FloatArray = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return component


def neighbour_offsets(step: int, count: int, causal: bool) -> list[int]:
    """Offsets to up to `count` neighbours `step` apart, nearest first: both sides alternately, or only
    the past when `causal`."""
    if causal:
        return [-step * k for k in range(1, count + 1)]
    return [step * k * side for k in range(1, count + 1) for side in (-1, 1)]


def nearest_mean(values: FloatArray, offsets: list[int], k: int) -> tuple[FloatArray, FloatArray]:
    """For each point: the mean of the first `k` non-missing values at `offsets` from it, and their count.

    Near the ends, or where points are missing (cleaned out, quiet days), it reaches further instead of
    averaging fewer points: the last day is judged on as many neighbours as a day in the middle.
    """
    n = len(values)
    stacked = np.full((len(offsets), n), np.nan)
    positions = np.arange(n)
    for row, offset in enumerate(offsets):
        source = positions + offset
        inside = (source >= 0) & (source < n)
        stacked[row, inside] = values[source[inside]]
    used = ~np.isnan(stacked) & (np.cumsum(~np.isnan(stacked), axis=0) <= k)
    count = used.sum(axis=0).astype(np.float64)
    total = np.where(used, stacked, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(count > 0, total / count, np.nan)  # no neighbour at all: nan
    return mean, count


def seasonal_baseline(y: FloatArray, season_length: int, neighbours: int) -> FloatArray:
    """Median of the same season position in up to `neighbours` seasons on each side, excluding the point."""
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
    for i in range(n):
        around = np.delete(residuals[max(0, i - half) : i + half + 1], min(i, half))
        spread[i] = MAD_TO_SD * np.median(np.abs(around - np.median(around))) if len(around) else 0.0
    return np.maximum(spread, 0.5)


@dataclass(frozen=True)
class AnomalyRules:
    """When a statistically unusual bucket is worth telling a person about (`ANOMALY_*` settings)."""

    min_change: float = 0.3  # share of the expected value
    min_units: float = 5.0  # absolute gap per bucket, quantity series
    min_revenue: float = 50.0  # absolute gap per bucket, revenue series
    min_history_days: int = 56  # a product's own series is judged from this much history on
    calendar: ShopCalendar = field(default_factory=ShopCalendar)

    def min_gap(self, metric: str) -> float:
        return self.min_units if metric == "quantity" else self.min_revenue


STATISTICAL_ONLY = AnomalyRules(min_change=0.0, min_units=0.0, min_revenue=0.0)


@dataclass(frozen=True)
class Detection:
    anomalies: list[Anomaly]
    threshold: float


def detect_anomalies(
    series: Series,
    model: str,
    *,
    metric: str = "quantity",
    rules: AnomalyRules = STATISTICAL_ONLY,
    causal: bool = False,
) -> Detection:
    """Run the detector and explain each flagged bucket (pure; CPU work). `causal`: each bucket judged on
    the ones before it only (the alerts)."""
    season = SEASON[series.bucket] if series.bucket == Bucket.DAILY else 1
    options: dict[str, Any] = {"min_change": rules.min_change, "min_gap": rules.min_gap(metric)}
    if causal:
        options["causal"] = True
    detector = DETECTORS[model](season_length=season, **options)
    y = series.values
    if len(y) < 14:
        return Detection([], getattr(detector, "threshold", 0.0))
    quiet_days = rules.calendar.expected_buckets(series.starts, series.bucket_days, y)
    quiet = np.zeros(len(y), dtype=bool)
    quiet[list(quiet_days)] = True
    detector.fit(y, quiet)
    flags = detector.detect(y)
    scores = detector.score(y)
    threshold = float(getattr(detector, "threshold", 4.0))
    found = [
        _anomaly(
            series.starts[i],
            float(y[i]),
            float(detector.expected_[i]),
            float(scores[i]),
            threshold,
            series,
            quiet_days.get(i),
        )
        for i in map(int, np.flatnonzero(flags))
        if not (i in quiet_days and quiet_days[i].closed)  # a sale on a closing day is not news
    ]
    return Detection(found, threshold)


def _anomaly(
    day: date,
    value: float,
    expected: float,
    score: float,
    threshold: float,
    series: Series,
    quiet: QuietDay | None = None,
) -> Anomaly:
    when = (
        day.strftime("%A %Y-%m-%d")
        if series.bucket == Bucket.DAILY
        else f"the {series.bucket_days} days from {day}"
    )
    if value == 0 and expected > 0:
        kind = "ZERO_DROP"
        text = (
            f"No sales on {when}, although about {expected:,.0f} were expected:"
            " a closure, a stock-out or missing data?"
        )
    elif score > 0:
        kind = "HIGH_SPIKE"
        text = f"{value:,.0f} sold on {when}, {_above(value, expected)}."
    else:
        kind = "DROP"
        below = (1 - value / expected) * 100
        text = f"Only {value:,.0f} sold on {when}, {below:.0f}% below the {expected:,.0f} expected."
    if quiet is not None:
        text += (
            f" Note: {'the day was' if series.bucket == Bucket.DAILY else 'the period is'} {quiet.reason}."
        )
    severity = Severity.HIGH if abs(score) >= 2 * threshold or kind == "ZERO_DROP" else Severity.MEDIUM
    return Anomaly(
        date=day,
        value=round(value, 2),
        expected=round(expected, 2),
        score=round(score, 2),
        severity=severity,
        type=kind,
        explanation=text,
    )


def _above(value: float, expected: float) -> str:
    """How far above its expected value a spike is, in words that stay sensible when little was expected."""
    if expected < 0.5:  # "× the 0 expected" says nothing
        return "when almost none sell in such a period"
    ratio = value / expected
    if ratio >= 100:
        return f"over 100× the {expected:,.0f} expected for such a period"
    return f"{ratio:.1f}× the {expected:,.0f} expected for such a period"


class AnomalyService:
    """`POST /ml/anomalies`: detects only; sends nothing."""

    def __init__(
        self,
        lines: SaleLineCache,
        cache: Cache,
        *,
        ttl_seconds: int,
        history_days: int,
        rules: AnomalyRules = STATISTICAL_ONLY,
    ) -> None:
        self.lines = lines
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.rules = rules
        self.loader = SeriesLoader(lines, history_days=history_days)

    async def detect_json(self, request: AnomalyRequest, *, scope: str) -> bytes:
        """Anomalies of the named series as JSON bytes (cached per request and day)."""
        require_known(request.model, DETECTORS)
        today = self.lines.today()
        product = await self.loader.product(request)
        key = cache_key(
            CachePipeline.ML,
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
            detection = await anyio.to_thread.run_sync(
                lambda: detect_anomalies(series, request.model, metric=request.metric, rules=self.rules)
            )
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
