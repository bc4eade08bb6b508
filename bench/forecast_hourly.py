"""Hourly data with two seasons (a day of 24 hours, a week of 168): NAB's NYC taxi counts summed per hour.

    .venv/bin/python -m bench.forecast_hourly [--csv ../shared/data/anomaly/nab/nyc_taxi.csv] [--origins 8]

`auto` (season detected, as for a caller who gives none) against seasonal naive at 24 and at 168 hours and
Theta (24), in the same run, over rolling origins 48 hours apart that end a month before the data (the January
blizzard stays out): a 48-hour horizon, as M4's hourly series. MASE scaled with m = 24 (M4's hourly m), sMAPE.
This series is the development data for the MSTL candidate (hours within the week); hourly data the project
does not have scores it. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import emit
from salesflow.services.ml import metrics
from salesflow.services.ml.selection import AutoForecaster
from salesflow.services.ml.strategies import FloatArray, Forecaster, SeasonalNaive, Theta

HORIZON = 48
M = 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=Path("../shared/data/anomaly/nab/nyc_taxi.csv"))
    parser.add_argument("--origins", type=int, default=8)
    args = parser.parse_args()
    frame = pd.read_csv(args.csv, parse_dates=["timestamp"])
    y = frame.set_index("timestamp")["value"].resample("h").sum().to_numpy(dtype=np.float64)
    methods: dict[str, Callable[[], Forecaster | AutoForecaster]] = {
        "auto": lambda: AutoForecaster(season_length=1, horizon=HORIZON),
        "seasonal_naive_24": lambda: SeasonalNaive(season_length=24),
        "seasonal_naive_168": lambda: SeasonalNaive(season_length=168),
        "theta_24": lambda: Theta(season_length=24),
    }
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    chosen = []
    for origin in range(args.origins):
        cut = len(y) - HORIZON * (origin + 1) - 24 * 30
        train, actual = y[:cut], y[cut : cut + HORIZON]
        for name, build in methods.items():
            started = time.perf_counter()
            model = build().fit(train)
            forecast: FloatArray = model.predict(HORIZON)["mean"]
            seconds[name] += time.perf_counter() - started
            scores[name].append((metrics.mase(actual, forecast, train, M), metrics.smape(actual, forecast)))
            if isinstance(model, AutoForecaster):
                chosen.append("+".join(model.choice_.members))
    emit(
        "forecast_hourly",
        {
            "series_hours": len(y),
            "origins": args.origins,
            "horizon": HORIZON,
            **{
                name: {
                    "mase": round(float(np.mean([m for m, _ in values])), 3),
                    "smape": round(float(np.mean([s for _, s in values])), 3),
                    "seconds_per_fit": round(seconds[name] / args.origins, 2),
                }
                for name, values in scores.items()
            },
            "auto_chose": sorted(set(chosen)),
        },
    )


if __name__ == "__main__":
    main()
