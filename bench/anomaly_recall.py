"""Recall and false alarms of the default anomaly detector, by size, level and position of the event.

    .venv/bin/python -m bench.anomaly_recall [--series 200] [--first-seed 1000] [--days 365]

Each series is a year of Poisson daily counts around a mean level (5, 20, 80 or 300 a day) with the demo
shop's weekly profile (Sunday 0.65 … Saturday 1.45 of the mean), starting on a weekday that changes with
the seed (so each position falls on every weekday); one event is injected per series: a spike
(×2, ×3, ×5), a drop (−30%, −50%, −70%) or a zero day, in the middle of the series, on one of the last 7
days, or yesterday (the last day). Found = that day flagged, in the right direction, with the service's
default rules (`ANOMALY_MIN_CHANGE` 0.3, `ANOMALY_MIN_UNITS` 5). Two modes: as `/ml/anomalies` runs it
(each day judged on the weeks around it, the last days on the weeks before them) and as the alerts run it
(`causal`: every day judged on the days before it only). False alarms: days flagged among the days without
an event, after the first three weeks.

An event's size in standard deviations of the count noise is measured on the variance-stabilised scale,
|2√(λ'+3/8) − 2√(λ+3/8)| with λ that day's mean and λ' its mean with the event. The threshold was chosen on
seeds 0–199 (`--first-seed 0`); the figures in docs/benchmarks.md are seeds 1000–1199, scored once.
Baseline in the same run: the earlier backend's plain z-score (|z| > 3 over the whole series). Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import numpy as np

from bench.common import emit
from salesflow.config import Settings
from salesflow.services.ml.anomalies import RobustSeasonalDetector, stabilise

WEEK = np.array([0.85, 0.9, 0.95, 1.0, 1.2, 1.45, 0.65])  # the demo shop's Monday … Sunday
LEVELS = (5, 20, 80, 300)
EVENTS = {
    "spike x2": 2.0,
    "spike x3": 3.0,
    "spike x5": 5.0,
    "drop 30%": 0.7,
    "drop 50%": 0.5,
    "drop 70%": 0.3,
    "zero day": 0.0,
}
POSITIONS = ("middle", "last 7 days", "yesterday")
SIZE_BANDS = ((0, 3), (3, 4), (4, 5), (5, 6), (6, 8), (8, np.inf))
WARM_UP_DAYS = 21


def event_day(position: str, seed: int, days: int) -> int:
    if position == "middle":
        return days // 2 + seed // 7 % 7
    if position == "last 7 days":
        return days - 7 + seed % 6  # 7 to 2 days before today
    return days - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    # Other detector parameters, to choose on the development split (`--first-seed 0`):
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--neighbours", type=int)
    parser.add_argument("--spread-points", type=int)
    args = parser.parse_args()
    defaults = Settings(dev_mode=True)
    rules: dict[str, Any] = {
        "min_change": defaults.anomalies.min_change,
        "min_gap": defaults.anomalies.min_units,
    }
    for name in ("threshold", "neighbours", "spread_points"):
        if getattr(args, name) is not None:
            rules[name] = getattr(args, name)
    detectors = {
        "api": RobustSeasonalDetector(**rules),
        "alerts": RobustSeasonalDetector(causal=True, **rules),
    }
    found: dict[tuple[str, str, int, str], int] = defaultdict(int)
    by_size: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    sizes: dict[tuple[str, int], list[float]] = defaultdict(list)
    clean: dict[str, dict[int, list[int]]] = {
        mode: defaultdict(lambda: [0, 0]) for mode in [*detectors, "plain z-score"]
    }
    clean_last_week = {mode: [0, 0] for mode in detectors}
    zscore_found: dict[tuple[str, int], int] = defaultdict(int)
    started = time.perf_counter()
    days = args.days
    for level in LEVELS:
        for event, factor in EVENTS.items():
            for position in POSITIONS:
                for seed in range(args.first_seed, args.first_seed + args.series):
                    rng = np.random.default_rng([seed, level, int(factor * 10), POSITIONS.index(position)])
                    # Each series starts on another weekday, so that every position falls on every weekday.
                    mean = level * np.roll(np.tile(WEEK, days // 7 + 2), -(seed % 7))[:days]
                    y = rng.poisson(mean).astype(np.float64)
                    day = event_day(position, seed, days)
                    y[day] = rng.poisson(mean[day] * factor) if factor else 0.0
                    size = float(abs(stabilise(mean[day] * factor) - stabilise(mean[day])))
                    band = next(i for i, (low, high) in enumerate(SIZE_BANDS) if low <= size < high)
                    # By size: only events well clear of the practical minimums (which alone may hide them).
                    change = abs(factor - 1)
                    clear = (
                        change >= 1.5 * rules["min_change"] and mean[day] * change >= 1.5 * rules["min_gap"]
                    )
                    sizes[(event, level)].append(size)
                    others = np.ones(days, dtype=bool)
                    others[[day, *range(WARM_UP_DAYS)]] = False
                    for mode, detector in detectors.items():
                        detector.fit(y)
                        flags = detector.detect(y)
                        hit = bool(flags[day]) and (detector.scores_[day] > 0) == (factor > 1)
                        found[(mode, event, level, position)] += hit
                        if clear:
                            by_size[(mode, band)][0] += hit
                            by_size[(mode, band)][1] += 1
                        if position == "middle":  # clean days: each series counted once per mode
                            clean[mode][level][0] += int(flags[others].sum())
                            clean[mode][level][1] += int(others.sum())
                        if position == "middle" and event == "zero day":
                            clean_last_week[mode][0] += int(flags[-7:].sum())
                            clean_last_week[mode][1] += 7
                    z = np.abs(y - y.mean()) / y.std()
                    zscore_found[(event, level)] += bool(z[day] > 3 and (y[day] > y.mean()) == (factor > 1))
                    if position == "middle":
                        clean["plain z-score"][level][0] += int((z[others] > 3).sum())
                        clean["plain z-score"][level][1] += int(others.sum())
    n = args.series
    table = [
        {
            "event": event,
            "level": level,
            "size_sd": round(float(np.mean(sizes[(event, level)])), 1),
            **{
                f"{mode} {position}": round(found[(mode, event, level, position)] / n * 100, 1)
                for mode in detectors
                for position in POSITIONS
            },
            "plain z-score": round(float(zscore_found[(event, level)]) / (3 * n) * 100, 1),
        }
        for event in EVENTS
        for level in LEVELS
    ]
    emit(
        "anomaly_recall",
        {
            "series_per_cell": n,
            "seeds": f"{args.first_seed}..{args.first_seed + n - 1}",
            "days": days,
            "rules": rules,
            "seconds": round(time.perf_counter() - started, 1),
            "clean_days_flagged_pct": {
                mode: {
                    **{str(level): round(f / max(t, 1) * 100, 4) for level, (f, t) in per_level.items()},
                    "all": round(
                        sum(f for f, _ in per_level.values())
                        / max(sum(t for _, t in per_level.values()), 1)
                        * 100,
                        4,
                    ),
                }
                for mode, per_level in clean.items()
            },
            "clean_last_7_days_flagged_pct": {
                mode: round(f / max(t, 1) * 100, 4) for mode, (f, t) in clean_last_week.items()
            },
            "recall_by_size_sd_pct (events at least 1.5x the practical minimums)": {
                mode: {
                    f"{low}-{high} ({by_size[(mode, i)][1]})": round(
                        by_size[(mode, i)][0] / max(by_size[(mode, i)][1], 1) * 100, 1
                    )
                    for i, (low, high) in enumerate(SIZE_BANDS)
                }
                for mode in detectors
            },
            "recall_pct": table,
        },
    )


if __name__ == "__main__":
    main()
