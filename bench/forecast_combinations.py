"""Every mean and median combination of statsforecast's models on an M4-format set, each model fitted once per
series: which combination would be worth its fitting cost in `auto`.

    .venv/bin/python -m bench.forecast_combinations --train ../shared/data/m3/M3Monthly-dev-train.csv \\
        --test ../shared/data/m3/M3Monthly-dev-test.csv --season-length 12 --horizon 18 \\
        [--half dev] [--top 12]

Models: DOTM (`auto`'s `theta`), AutoETS, AutoCES, standard Theta, dynamic standard Theta (DSTM) and seasonal
AutoARIMA, all at the given season. Prints one JSON line: each model's sMAPE and seconds per fit, and the
`--top` combinations (of two to four models; the median of three or four) by sMAPE. Choose on `--half dev`.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from statsforecast import models as sf

from bench.common import emit
from bench.forecast_m4 import half_of, read_m4
from salesflow.services.ml import metrics

MOST_COMBINED = 4  # models in a combination
MODELS: dict[str, Callable[[int], Any]] = {
    "dotm": lambda m: sf.DynamicOptimizedTheta(season_length=m),
    "ets": lambda m: sf.AutoETS(season_length=m),
    "ces": lambda m: sf.AutoCES(season_length=m),
    "sf_theta": lambda m: sf.Theta(season_length=m),
    "dstm": lambda m: sf.DynamicTheta(season_length=m),
    "arima": lambda m: sf.AutoARIMA(season_length=m),
}


def forecast_all(
    args: tuple[str, np.ndarray, int, int],
) -> tuple[str, dict[str, np.ndarray], dict[str, float]]:
    """Each model's forecast of one series (the last value where a model fails) and its fitting time."""
    key, y, season, horizon = args
    forecasts, seconds = {}, {}
    for name, build in MODELS.items():
        started = time.perf_counter()
        try:
            forecasts[name] = np.maximum(np.asarray(build(season).fit(y).predict(horizon)["mean"]), 0.0)
        except Exception:  # counted as its naive forecast, as `auto`'s backtest does
            forecasts[name] = np.full(horizon, y[-1])
        seconds[name] = time.perf_counter() - started
    return key, forecasts, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--season-length", type=int, required=True)
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--half", choices=("all", "dev", "holdout"), default="dev")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    train, test = read_m4(args.train), read_m4(args.test)
    jobs = [(key, train[key], args.season_length, args.horizon) for key in half_of(train, args.half)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(forecast_all, jobs, chunksize=4))

    def smape_of(combine: Callable[[list[np.ndarray]], np.ndarray], names: tuple[str, ...]) -> float:
        return float(
            np.mean(
                [
                    metrics.smape(test[key][: args.horizon], combine([forecasts[n] for n in names]))
                    for key, forecasts, _ in results
                ]
            )
        )

    scores: dict[str, float] = {}
    for size in range(2, MOST_COMBINED + 1):
        for names in itertools.combinations(MODELS, size):
            scores["mean(" + "+".join(names) + ")"] = smape_of(lambda f: np.mean(f, axis=0), names)
            if size > 2:
                scores["median(" + "+".join(names) + ")"] = smape_of(lambda f: np.median(f, axis=0), names)
    emit(
        "forecast_combinations",
        {
            "half": args.half,
            "series": len(results),
            "models_smape": {name: round(smape_of(lambda f: f[0], (name,)), 3) for name in MODELS},
            "seconds_per_fit": {
                name: round(float(np.mean([s[name] for _, _, s in results])), 3) for name in MODELS
            },
            "best_combinations_smape": {
                name: round(score, 3)
                for name, score in sorted(scores.items(), key=lambda kv: kv[1])[: args.top]
            },
        },
    )


if __name__ == "__main__":
    main()
