"""Daily development data in M4's format: share prices and exchange rates, the last 14 days held out.

    .venv/bin/python -m bench.daily_dev_set [--raw ../shared/data/daily/raw] [--out ../shared/data/daily]

M4's daily series are held out, and the three with training data here say little. M4 Daily is mostly finance
and company figures (1,559 finance, 1,476 micro of 4,227 series) that move like random walks, where the naive
forecast is hard to beat (M4's best honest entries: OWA 0.98). Two public sets of that kind, not taken from
M4's files: the daily closing prices of 505 S&P 500 shares, 2013-02-08 to 2018-02-07 (Kaggle "S&P 500 stock
data", trading days), each share cut at one of five end points 150 days apart (by its place in the list:
shares held out over one fortnight would be one market's shock counted 505 times), and the daily exchange
rates of eight currencies from 1990 (Lai et al. 2018's set), each cut at ten end points 700 days apart (the
last 4,000 days before each): 581 series. Horizon 14, as M4's. Writes `Daily-dev-{train,test}.csv`;
`bench.forecast_m4 --half dev` chooses on every other series, `--half holdout` scores the rest once.

The raw files, fetched once: `stock_data/individual_stocks_5yr/*.csv` of CNuge/kaggle-code@f110943
concatenated as `stocks_5yr.csv` (columns date,open,high,low,close,volume,Name), and
`dataset/exchange_rate/exchange_rate.csv` of XiongxiaoXu/SST@54de063.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import emit
from bench.forecast_m4 import write_m4

HORIZON = 14
SHARE_CUTS, SHARE_CUT_EVERY = 5, 150
RATE_CUTS, RATE_CUT_EVERY = 10, 700
HISTORY = 4_000


def share_prices(raw: Path) -> dict[str, np.ndarray]:
    frame = pd.read_csv(raw / "stocks_5yr.csv", parse_dates=["date"]).sort_values(["Name", "date"])
    series = {}
    for place, (name, group) in enumerate(frame.groupby("Name")):
        values = group["close"].dropna().to_numpy(dtype=np.float64)
        series[f"S-{name}"] = values[: len(values) - place % SHARE_CUTS * SHARE_CUT_EVERY]
    return series


def exchange_rates(raw: Path) -> dict[str, np.ndarray]:
    frame = pd.read_csv(raw / "exchange_rate.csv").drop(columns="date")
    series = {}
    for column in frame:
        values = frame[column].to_numpy(dtype=np.float64)
        for cut in range(RATE_CUTS):
            end = len(values) - cut * RATE_CUT_EVERY
            series[f"X-{column}-{cut}"] = values[max(0, end - HISTORY) : end]
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=Path("../shared/data/daily/raw"))
    parser.add_argument("--out", type=Path, default=Path("../shared/data/daily"))
    args = parser.parse_args()
    every = share_prices(args.raw) | exchange_rates(args.raw)
    series = {key: y for key, y in every.items() if len(y) > 3 * HORIZON}
    write_m4({key: y[:-HORIZON] for key, y in series.items()}, args.out / "Daily-dev-train.csv")
    write_m4({key: y[-HORIZON:] for key, y in series.items()}, args.out / "Daily-dev-test.csv")
    emit("daily_dev_set", {"series": len(series), "horizon": HORIZON})


if __name__ == "__main__":
    main()
