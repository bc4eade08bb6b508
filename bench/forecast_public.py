"""`auto` on public monthly and quarterly series shipped with the installed packages, against seasonal naive
and Theta in the same run: frequencies that neither the M4 Weekly nor the daily benches cover.

    .venv/bin/python -m bench.forecast_public [--origins 4]

Monthly (m = 12, h = 18 as in M4): AirPassengers (statsforecast), euro-area electrical equipment orders,
El Niño sea temperatures and Mauna Loa CO2 (weekly readings averaged per month; statsmodels). Quarterly
(m = 4, h = 8): the nine positive series of statsmodels' US macro data (GDP, consumption, investment, ...).
Each series is forecast from `--origins` rolling origins h apart, the last one h before its end. Nothing was
chosen on these series: they check choices made on other data. Prints one JSON line per frequency.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from statsforecast.utils import AirPassengers
from statsmodels.datasets import co2, elec_equip, elnino, macrodata  # type: ignore[import-untyped]

from bench.common import emit
from salesflow.services.ml import metrics
from salesflow.services.ml.selection import AutoForecaster
from salesflow.services.ml.strategies import FloatArray, SeasonalNaive, Theta

QUARTERLY_COLUMNS = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "unemp", "pop")
METHODS = ("auto", "seasonal_naive", "theta")


def monthly_series() -> dict[str, FloatArray]:
    nino = elnino.load_pandas().data.drop(columns="YEAR").to_numpy().ravel()
    readings = co2.load_pandas().data["co2"]
    monthly_co2 = readings.resample("MS").mean().interpolate().dropna()
    return {
        "air_passengers": np.asarray(AirPassengers, dtype=np.float64),
        "elec_equip": elec_equip.load_pandas().data.iloc[:, 0].to_numpy(dtype=np.float64),
        "elnino": nino.astype(np.float64),
        "co2": monthly_co2.to_numpy(dtype=np.float64),
    }


def quarterly_series() -> dict[str, FloatArray]:
    frame = macrodata.load_pandas().data
    return {name: frame[name].to_numpy(dtype=np.float64) for name in QUARTERLY_COLUMNS}


def evaluate(job: tuple[str, FloatArray, int, int, int]) -> dict[str, object]:
    """Every method from every origin of one series: errors, 95% coverage of `auto`, seconds per fit."""
    name, y, m, h, origins = job
    rows: list[dict[str, float]] = []
    fit_seconds = 0.0
    for origin in range(origins, 0, -1):
        cut = len(y) - origin * h
        train, actual = y[:cut], y[cut : cut + h]
        started = time.perf_counter()
        auto = AutoForecaster(season_length=m, horizon=h).fit(train)
        ours = auto.predict(h, [95])
        fit_seconds += time.perf_counter() - started
        forecasts = {
            "auto": ours["mean"],
            "seasonal_naive": SeasonalNaive(season_length=m).fit(train).predict(h)["mean"],
            "theta": Theta(season_length=m).fit(train).predict(h)["mean"],
        }
        row: dict[str, float] = {}
        for method, values in forecasts.items():
            row[f"{method}_smape"] = metrics.smape(actual, values)
            row[f"{method}_mase"] = metrics.mase(actual, values, train, m)
        row["inside_95"] = metrics.inside(actual, ours["lo-95"], ours["hi-95"])
        row["points"] = len(actual)
        rows.append(row)
    return {"series": name, "rows": rows, "fit_seconds": fit_seconds / origins}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, default=4)
    args = parser.parse_args()
    for frequency, series, m, h in (
        ("monthly", monthly_series(), 12, 18),
        ("quarterly", quarterly_series(), 4, 8),
    ):
        jobs = [(name, y, m, h, args.origins) for name, y in series.items()]
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(evaluate, jobs))
        wall = time.perf_counter() - started
        rows = pd.DataFrame([row for result in results for row in result["rows"]])  # type: ignore[attr-defined]
        figures: dict[str, object] = {
            "frequency": frequency,
            "series": {result["series"]: len(y) for result, y in zip(results, series.values(), strict=True)},
            "m": m,
            "horizon": h,
            "origins": args.origins,
        }
        for method in METHODS:
            figures[method] = {
                "smape": round(float(rows[f"{method}_smape"].mean()), 3),
                "mase": round(float(rows[f"{method}_mase"].mean()), 3),
            }
        figures["auto_coverage_95_pct"] = round(
            float(rows["inside_95"].sum() / rows["points"].sum() * 100), 1
        )
        figures["auto_seconds_per_fit"] = round(
            float(np.mean([float(result["fit_seconds"]) for result in results])),  # type: ignore[arg-type]
            2,
        )
        figures["wall_s"] = round(wall, 1)
        emit("forecast_public", figures)


if __name__ == "__main__":
    main()
