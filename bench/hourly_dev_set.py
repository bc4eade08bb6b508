"""Build hourly development data in M4's format (48 hours ahead) from public hourly series.

    .venv/bin/python -m bench.hourly_dev_set [--raw ../shared/data/hourly/raw] [--out ../shared/data/hourly]

M4 Hourly is held out, and NAB's taxi counts are one series: a model learned across series needs a set to be
chosen on. This one cuts 140 series from ten public hourly sources, none of them M4's: PJM's electricity load
for three regions (COMED, DUQ, DAYTON), Capital Bikeshare's rentals (all, registered, casual), the I-94
traffic volume and air temperature, Beijing's PM2.5 and NAB's NYC taxi (summed per hour). Each source gives
up to 15 non-overlapping segments of 1,008 hours, newest first; a segment is kept when at most 2% of its hours
were missing (filled by interpolation; a bike-share hour without a row had no rentals) and its last 48 hours
are not all zero. Training lengths alternate between M4 Hourly's two, 960 and 700 hours. Writes
`Hourly-dev-train.csv` and `Hourly-dev-test.csv`; `bench.forecast_m4 --half dev` chooses on every other
series, `--half holdout` scores the rest once.

The raw files, by repository and path (fetched once; `docs/benchmarks.md` names the commits): COMED.csv
and DUQ.csv from serkanozen/Data, DAYTON.csv from PRACHI-VERMA16/Task_3-time_series_analysis, bike.csv
(`hour.csv`) from Cionsa/Datasets, metro.csv (`Metro_Interstate_Traffic_Volume.csv`) from
dhyanshah/TimeSeries, prsa.csv (`PRSA_data_2010.1.1-2014.12.31.csv`) from Agil1102/dataset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import emit
from bench.forecast_m4 import write_m4

HORIZON = 48
SEGMENT_HOURS = 1008  # six weeks: the longer training length and the horizon
TRAINING_HOURS = (960, 700)  # M4 Hourly's two training lengths, alternately
MAX_SEGMENTS = 15  # per source, so that no source outweighs the rest
MAX_MISSING_SHARE = 0.02

Hourly = tuple[pd.Series, pd.Series]  # the values on a full hourly index, and which of them were missing


def on_hourly_index(values: pd.Series) -> Hourly:
    """Readings averaged per hour (a clock change repeats an hour) on a full hourly index, gaps filled."""
    values = values.sort_index()
    values = values.groupby(pd.DatetimeIndex(values.index).floor("h")).mean()
    full = values.reindex(pd.date_range(values.index[0], values.index[-1], freq="h"))
    return full.interpolate(limit_direction="both"), full.isna()


def read_sources(raw: Path, taxi: Path) -> dict[str, Hourly]:
    sources: dict[str, Hourly] = {}
    for region in ("COMED", "DUQ", "DAYTON"):
        load = pd.read_csv(raw / f"{region}.csv")
        when = pd.to_datetime(load["Datetime"], format="mixed")
        sources[region] = on_hourly_index(pd.Series(load.iloc[:, 1].to_numpy(float), index=when))
    bike = pd.read_csv(raw / "bike.csv")
    when = pd.to_datetime(bike["dteday"].astype(str)) + pd.to_timedelta(bike["hr"], unit="h")
    hours = pd.date_range(when.min(), when.max(), freq="h")
    for column in ("cnt", "registered", "casual"):
        rentals = pd.Series(bike[column].to_numpy(float), index=when).reindex(hours).fillna(0.0)
        sources[f"bike_{column}"] = rentals, pd.Series(False, index=hours)
    metro = pd.read_csv(raw / "metro.csv")
    when = pd.to_datetime(metro["date_time"], format="mixed")
    for column in ("traffic_volume", "temp"):
        sources[f"metro_{column}"] = on_hourly_index(pd.Series(metro[column].to_numpy(float), index=when))
    air = pd.read_csv(raw / "prsa.csv")
    when = pd.to_datetime(air[["year", "month", "day", "hour"]])
    pm = pd.Series(air["pm"].to_numpy(float), index=when)
    filled, _ = on_hourly_index(pm.dropna())
    sources["pm25"] = filled, pm.reindex(filled.index).isna()
    rides = pd.read_csv(taxi, parse_dates=["timestamp"]).set_index("timestamp")["value"]
    hourly_rides = rides.resample("h").sum().astype(float)
    sources["taxi"] = hourly_rides, pd.Series(False, index=hourly_rides.index)
    return sources


def segments(name: str, source: Hourly) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Up to `MAX_SEGMENTS` (training, test) pairs of a source, newest first."""
    values, missing = source[0].to_numpy(), source[1].to_numpy()
    kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    end = len(values)
    while end >= SEGMENT_HOURS and len(kept) < MAX_SEGMENTS:
        segment, gaps = values[end - SEGMENT_HOURS : end], missing[end - SEGMENT_HOURS : end]
        end -= SEGMENT_HOURS
        if gaps.mean() > MAX_MISSING_SHARE or np.any(segment < 0) or segment[-HORIZON:].sum() <= 0:
            continue
        training = TRAINING_HOURS[len(kept) % 2]
        kept[f"{name}_{len(kept)}"] = segment[-HORIZON - training : -HORIZON], segment[-HORIZON:]
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=Path("../shared/data/hourly/raw"))
    parser.add_argument("--taxi", type=Path, default=Path("../shared/data/anomaly/nab/nyc_taxi.csv"))
    parser.add_argument("--out", type=Path, default=Path("../shared/data/hourly"))
    args = parser.parse_args()
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    per_source: dict[str, int] = {}
    for name, source in read_sources(args.raw, args.taxi).items():
        cut = segments(name, source)
        pairs |= cut
        per_source[name] = len(cut)
    write_m4({key: training for key, (training, _) in pairs.items()}, args.out / "Hourly-dev-train.csv")
    write_m4({key: test for key, (_, test) in pairs.items()}, args.out / "Hourly-dev-test.csv")
    emit("hourly_dev_set", {"series": len(pairs), "per_source": per_source})


if __name__ == "__main__":
    main()
