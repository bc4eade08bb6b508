"""False-positive rate of the default anomaly detector on clean demo-like series.

    .venv/bin/python -m bench.anomaly_false_positives [--products 300] [--days 730]

Every product of the demo catalogue gets a daily series drawn from its own demand profile (weekly and yearly
seasonality, trend, launch or discontinuation) with Poisson noise, but without promotions, stock-outs or
injected anomalies: anything flagged is a false positive. Baseline in the same run: the earlier backend's
plain z-score (|z| > 3, mean and standard deviation of the whole series) on the same series. Prints one
JSON line.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta

import numpy as np
import pandas as pd

from bench.common import emit
from salesflow.data import demo
from salesflow.services.ml.anomalies import RobustSeasonalDetector


def clean_demand(catalog: demo.DemoCatalog, days: int) -> np.ndarray:
    p = catalog.profile
    day = np.arange(days)[:, None]
    dates = pd.date_range(catalog.start, periods=days, freq="D")
    weekly = np.array([0.85, 0.9, 0.95, 1.0, 1.2, 1.45, 0.65])[dates.day_of_week.to_numpy()][:, None]
    doy = dates.day_of_year.to_numpy()[:, None]
    yearly = 1 + p["season_amp"].to_numpy() * np.cos(2 * np.pi * (doy - p["season_peak"].to_numpy()) / 365.25)
    trend = p["trend"].to_numpy() ** (day / days)
    active = (day >= p["launch_day"].to_numpy()) & (day < p["end_day"].to_numpy())
    return np.where(active, p["base_rate"].to_numpy() * weekly * yearly * trend, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--days", type=int, default=730)
    args = parser.parse_args()
    start = date.today() - timedelta(days=args.days - 1)
    catalog = demo.build_catalog(n_products=args.products, start=start, days=args.days, seed=42)
    expected = clean_demand(catalog, args.days)
    draws = np.random.default_rng(7).poisson(expected).astype(np.float64)
    series = [draws[:, i][expected[:, i] > 0] for i in range(args.products)] + [draws.sum(axis=1)]
    ours = zscore = scored = 0
    for y in series:
        if len(y) < 28:
            continue
        ours += int(RobustSeasonalDetector().fit(y).detect(y).sum())
        sd = y.std()
        zscore += int((np.abs(y - y.mean()) > 3 * sd).sum()) if sd > 0 else 0
        scored += len(y)
    emit(
        "anomaly_false_positives",
        {
            "series": len(series),
            "days_scored": scored,
            "flags": ours,
            "false_positive_rate_pct": round(ours / scored * 100, 4),
            "plain_zscore_flags": zscore,
            "plain_zscore_rate_pct": round(zscore / scored * 100, 4),
        },
    )


if __name__ == "__main__":
    main()
