"""Run the `auto` forecaster on every series of an M4-format pair of files and score it the M4 way.

    .venv/bin/python -m bench.forecast_m4 --train Weekly-train.csv --test Weekly-test.csv \\
        --season-length 1 --horizon 13 --out forecasts.csv [--model-season 0] [--naive2 FILE] [--workers 2]

Writes the forecasts in M4 format (`id,F1..FH`) and prints one JSON line: sMAPE, MASE (M4 definitions, MASE
scaled with `--season-length`, the metric's m: M4 uses 1 for yearly, weekly and daily data, 4 quarterly, 12
monthly, 24 hourly), OWA against Naive2 (`--naive2`: an M4-format forecast file, or the official benchmark
file with a `method` column; else computed the M4 way on `--season-length`), MSIS and the coverage of our 95%
intervals, Theta's sMAPE / MASE / OWA (same season, same run), the wall time and the number of failed series.
The model's season is another thing: `--model-season` (default 0: detected per series among 4, 7, 12, 24 and
52). Both means are taken the same way, over the series where the measure is defined (MASE is not for a
constant training series); the counts of series left out are printed. A series too short for a baseline's
model (a yearly series of a few points) gets the naive forecast as that baseline.
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from statsforecast import models as sf

from bench.common import candidates_option, emit
from salesflow.models.ml import SeriesKind
from salesflow.services.ml import metrics
from salesflow.services.ml.pooled import POOLED_KINDS, PooledForecaster, averaged_with
from salesflow.services.ml.selection import SMOOTH_CANDIDATES, AutoForecaster
from salesflow.services.ml.strategies import Theta, usable_season


def read_m4(path: Path) -> dict[str, np.ndarray]:
    """M4's wide format: an id column, then the values (trailing blanks for shorter series)."""
    frame = pd.read_csv(path)
    values = frame.iloc[:, 1:].to_numpy(dtype=np.float64)
    return {str(key): row[~np.isnan(row)] for key, row in zip(frame.iloc[:, 0], values, strict=True)}


def write_m4(series: dict[str, np.ndarray], path: Path) -> None:
    """M4's wide format: an id column, then the values, shorter series padded with blanks."""
    width = max(len(values) for values in series.values())
    padded = [np.pad(values, (0, width - len(values)), constant_values=np.nan) for values in series.values()]
    columns = ["V1", *[f"V{i + 2}" for i in range(width)]]
    frame = pd.DataFrame(padded, columns=columns[1:])
    frame.insert(0, columns[0], list(series))
    frame.to_csv(path, index=False)


def half_of(series: dict[str, np.ndarray], half: str) -> list[str]:
    """The series ids of a half (`dev`: every other id in order, to choose on; `holdout`: the rest, scored
    once), or all of them."""
    keys = sorted(series)
    return keys if half == "all" else keys[0 if half == "dev" else 1 :: 2]


def read_long(path: Path, drop: list[str]) -> dict[str, np.ndarray]:
    """A long `id,date,value` file (the M4 Daily training excerpt), series in date order."""
    frame = pd.read_csv(path, parse_dates=["date"]).sort_values(["id", "date"])
    return {
        str(key): group["value"].to_numpy(dtype=np.float64)
        for key, group in frame.groupby("id")
        if str(key) not in drop
    }


def read_naive2(path: Path, horizon: int) -> dict[str, np.ndarray]:
    frame = pd.read_csv(path)
    if "method" in frame.columns:
        frame = frame[frame["method"] == "Naive2"].drop(columns="method")
    return {
        str(row[0]): np.asarray(row[1 : horizon + 1], dtype=np.float64)
        for row in frame.itertuples(index=False)
    }


def forecast_one(
    args: tuple[str, np.ndarray, int, int, int, float | None, tuple[tuple[str, ...], ...]],
) -> tuple[str, dict[str, np.ndarray], str | None, SeriesKind | None, int]:
    """Our forecast with its 95% interval, and Theta's (same season) as the same-run baseline; the series'
    kind and season by `auto`."""
    key, y, model_season, metric_season, horizon, switch_ratio, candidates = args
    baselines = same_run_baselines(y, horizon, model_season or 1) | {
        "naive2": naive2(y, horizon, metric_season)
    }
    try:
        model = AutoForecaster(season_length=model_season or 1, horizon=horizon, smooth_candidates=candidates)
        if switch_ratio is not None:
            model.switch_ratio = switch_ratio
        model.fit(y)
        ours = model.predict(horizon, [95])
        theta = or_naive(
            lambda: Theta(season_length=model.period_).fit(y).predict(horizon)["mean"], y, horizon
        )
        return key, {**ours, "theta": theta, **baselines}, None, model.choice_.kind, model.period_
    except Exception as exc:  # a failed series is counted and reported, never silently dropped
        flat = np.full(horizon, y[-1])
        return (
            key,
            {"mean": flat, "lo-95": flat, "hi-95": flat, "theta": flat, **baselines},
            f"{type(exc).__name__}: {exc}",
            None,
            1,
        )


def or_naive(forecast: Callable[[], np.ndarray], y: np.ndarray, horizon: int) -> np.ndarray:
    """A baseline's forecast, or the last value repeated on a series too short for the baseline's model (a
    yearly series of a few points): the baselines must not fail where ours does not."""
    try:
        return np.asarray(forecast(), dtype=np.float64)
    except Exception:
        return np.full(horizon, y[-1])


def averaged_with_pooled(
    train: dict[str, np.ndarray],
    results: list[tuple[str, dict[str, np.ndarray], str | None, SeriesKind | None, int]],
    horizon: int,
) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """`auto`'s forecasts averaged with a model learned across the set (its smooth series), and how many
    were; the set's season is the one `auto` found most often."""
    seasons = collections.Counter(season for *_, season in results)
    pooled = PooledForecaster(horizon=horizon, season_length=seasons.most_common(1)[0][0])
    ahead = pooled.fit(list(train.values())).predict([train[key] for key, *_ in results])
    outputs, averaged = {}, 0
    for (key, forecast, _, kind, _), extra in zip(results, ahead, strict=True):
        if extra is not None and kind in POOLED_KINDS:
            ours = averaged_with({k: forecast[k] for k in ("mean", "lo-95", "hi-95")}, extra)
            forecast, averaged = forecast | ours | {"auto_alone": forecast["mean"]}, averaged + 1
        outputs[key] = forecast
    return outputs, averaged


def same_run_baselines(y: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """statsforecast's standard Theta and seasonal naive on the model's season."""
    m = usable_season(season, len(y))
    return {
        "sf_theta": or_naive(
            lambda: sf.Theta(season_length=m).fit(y=y).predict(h=horizon)["mean"], y, horizon
        ),
        "seasonal_naive": np.resize(y[-m:], horizon) if m > 1 else np.full(horizon, y[-1]),
    }


def naive2(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """M4's Naive2: the last value of the seasonally adjusted series (classical multiplicative decomposition)
    when the series is seasonal by M4's test (the ACF at lag `season` over its 90% limit), else naive."""
    n = len(y)
    flat = np.full(horizon, y[-1])
    if season <= 1 or n < 3 * season or np.any(y <= 0):
        return flat
    x = y - y.mean()
    acf = np.array([np.dot(x[: n - k], x[k:]) for k in range(1, season + 1)]) / float(np.dot(x, x))
    if abs(acf[-1]) <= 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n):
        return flat
    trend = pd.Series(y).rolling(season, center=True).mean().rolling(2).mean().shift(-1).to_numpy()
    position = np.arange(n) % season
    index = np.array([np.nanmean((y / trend)[position == k]) for k in range(season)])
    index *= season / index.sum()
    adjusted_last = y[-1] / index[position[-1]]
    return np.asarray(adjusted_last * index[np.arange(n, n + horizon) % season], dtype=np.float64)


def score(
    train: dict[str, np.ndarray], test: dict[str, np.ndarray], forecasts: dict[str, np.ndarray], m: int
) -> tuple[float, float, int]:
    """Mean sMAPE and MASE over the series where each is defined, and how many were left out."""
    smapes = np.array([metrics.smape(test[k][: len(f)], f) for k, f in forecasts.items()])
    mases = np.array([metrics.mase(test[k][: len(f)], f, train[k], m) for k, f in forecasts.items()])
    left_out = int((~np.isfinite(smapes)).sum() + (~np.isfinite(mases)).sum())
    return float(np.mean(smapes[np.isfinite(smapes)])), float(np.mean(mases[np.isfinite(mases)])), left_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--season-length", type=int, required=True, help="the metric's m (MASE scaling)")
    parser.add_argument("--model-season", type=int, default=0, help="the model's season; 0: detect")
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--naive2", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--half", choices=("all", "dev", "holdout"), default="all")
    parser.add_argument(
        "--switch-ratio", type=float, help="instead of auto's default (to choose on --half dev)"
    )
    parser.add_argument(
        "--candidates",
        type=candidates_option,
        default=SMOOTH_CANDIDATES,
        help="auto's smooth candidates, the default first: theta+ets,theta,... (to choose on --half dev)",
    )
    parser.add_argument(
        "--pooled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="average auto with a model learned across the file's series (auto_alone_* is without it)",
    )
    parser.add_argument(
        "--train-long", action="store_true", help="--train is `id,date,value` (M4 Daily excerpt)"
    )
    parser.add_argument("--drop", nargs="*", default=[], help="series to leave out (D160 does not match M4)")
    args = parser.parse_args()

    train = read_long(args.train, args.drop) if args.train_long else read_m4(args.train)
    test = read_m4(args.test)
    started = time.perf_counter()
    kept = set(half_of(train, args.half))
    train = {key: y for key, y in train.items() if key in kept}
    jobs = [
        (key, y, args.model_season, args.season_length, args.horizon, args.switch_ratio, args.candidates)
        for key, y in train.items()
    ]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(forecast_one, jobs, chunksize=4))
    averaged = 0
    if args.pooled:
        outputs, averaged = averaged_with_pooled(train, results, args.horizon)
    else:
        outputs = {key: f for key, f, *_ in results}
    wall = time.perf_counter() - started
    forecasts = {key: f["mean"] for key, f in outputs.items()}
    failures = [(key, error) for key, _, error, *_ in results if error]
    columns = {f"F{i + 1}": [forecasts[k][i] for k in forecasts] for i in range(args.horizon)}
    pd.DataFrame({"id": list(forecasts), **columns}).to_csv(args.out, index=False)

    smape, mase, left_out = score(train, test, forecasts, args.season_length)
    figures: dict[str, object] = {
        "half": args.half,
        "switch_ratio": args.switch_ratio,
        "candidates": ",".join("+".join(c) for c in args.candidates),
        "series": len(forecasts),
        "pooled_series": averaged,
        "smape": round(smape, 3),
        "mase": round(mase, 3),
        "measures_left_out": left_out,
    }
    theta_smape, theta_mase, _ = score(
        train, test, {k: f["theta"] for k, f in outputs.items()}, args.season_length
    )
    msis = [
        metrics.msis(test[k][: len(f["mean"])], f["lo-95"], f["hi-95"], train[k], args.season_length)
        for k, f in outputs.items()
    ]
    inside = sum(
        metrics.inside(test[k][: len(f["mean"])], f["lo-95"], f["hi-95"]) for k, f in outputs.items()
    )
    figures |= {
        "msis_95": round(float(np.nanmean(msis)), 3),
        "coverage_95_pct": round(inside / sum(len(f["mean"]) for f in outputs.values()) * 100, 1),
        "theta_smape": round(theta_smape, 3),
        "theta_mase": round(theta_mase, 3),
    }
    baselines: dict[str, tuple[float, float]] = {}
    for name in ("sf_theta", "seasonal_naive", "auto_alone"):
        baselines[name] = score(
            train, test, {k: f.get(name, f["mean"]) for k, f in outputs.items()}, args.season_length
        )[:2]
        figures |= {
            f"{name}_smape": round(baselines[name][0], 3),
            f"{name}_mase": round(baselines[name][1], 3),
        }
    # Naive2: the official forecasts when given, else computed the M4 way on the metric's season (the
    # frequency's: 1 for yearly, weekly and daily data, where Naive2 is the naive forecast).
    official = read_naive2(args.naive2, args.horizon) if args.naive2 is not None else None
    naive2_of = official or {k: f["naive2"] for k, f in outputs.items()}
    smape2, mase2, left_out2 = score(train, test, {k: naive2_of[k] for k in forecasts}, args.season_length)
    figures |= {
        "naive2_smape": round(smape2, 3),
        "naive2_mase": round(mase2, 3),
        "naive2_measures_left_out": left_out2,
        "owa": round(metrics.owa(smape, mase, smape2, mase2), 4),
        "theta_owa": round(metrics.owa(theta_smape, theta_mase, smape2, mase2), 4),
        "auto_alone_owa": round(metrics.owa(*baselines["auto_alone"], smape2, mase2), 4),
    }
    figures |= {"wall_s": round(wall, 1), "failed_series": len(failures), "workers": args.workers}
    emit("forecast_m4", figures)


if __name__ == "__main__":
    main()
