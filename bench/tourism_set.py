"""Yearly, quarterly and monthly development data in M4's format, from the tourism forecasting competition.

    .venv/bin/python -m bench.tourism_set [--raw ../shared/data/tourism/raw] [--out ../shared/data/tourism]

M4's and M3's other frequencies are held out; the forecaster must still work at them without tuning by hand.
The tourism competition (Athanasopoulos, Hyndman, Song & Wu, IJF 2011) has 518 yearly, 427 quarterly and 366
monthly series, none of them M3's or M4's. Its Kaggle files hold each series' history without the
competition's test years, so the last horizon of each (the competition's: 4 years, 8 quarters, 24 months) is
held out here. Writes `Tourism{Yearly,Quarterly,Monthly}-{train,test}.csv`; `bench.forecast_m4 --half dev`
chooses on every other series, `--half holdout` scores the rest once.

The raw files, from realdanielbyrne/N-BEATS-Lightning@758818e (fetched once; only these two files):
`src/lightningnbeats/data/tourism1/tourism_data.csv` (yearly, one column per series, series end-aligned) and
`src/lightningnbeats/data/tourism2/tourism2_revision2.csv` (monthly columns `m1`… and quarterly `q1`…).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import emit
from bench.forecast_m4 import write_m4

HORIZONS = {"Yearly": 4, "Quarterly": 8, "Monthly": 24}


def columns_of(raw: Path) -> dict[str, pd.DataFrame]:
    """Each frequency's columns, one series per column."""
    seasonal = pd.read_csv(raw / "tourism2_revision2.csv")
    return {
        "Yearly": pd.read_csv(raw / "tourism_data.csv"),
        "Quarterly": seasonal.filter(regex=r"^q\d+$"),
        "Monthly": seasonal.filter(regex=r"^m\d+$"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=Path("../shared/data/tourism/raw"))
    parser.add_argument("--out", type=Path, default=Path("../shared/data/tourism"))
    args = parser.parse_args()
    counts: dict[str, int] = {}
    for frequency, frame in columns_of(args.raw).items():
        horizon = HORIZONS[frequency]
        series = {str(name).upper(): frame[name].dropna().to_numpy(dtype=np.float64) for name in frame}
        write_m4({key: y[:-horizon] for key, y in series.items()}, args.out / f"Tourism{frequency}-train.csv")
        write_m4({key: y[-horizon:] for key, y in series.items()}, args.out / f"Tourism{frequency}-test.csv")
        counts[frequency] = len(series)
    emit("tourism_set", {"series": counts})


if __name__ == "__main__":
    main()
