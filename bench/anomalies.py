"""Run the default anomaly detector on any timestamp/value CSV aggregated to a frequency.

    .venv/bin/python -m bench.anomalies --csv nyc_taxi.csv --timestamp-col timestamp \\
        --value-col value --freq D \\
        [--windows combined_windows.json --windows-key realKnownCause/nyc_taxi.csv] [--season-length 7]

Prints the flagged timestamps as JSON; with `--windows` (NAB's labelled windows), also how many windows were
found and how many flagged periods fall outside every window.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import emit
from salesflow.services.ml.anomalies import RobustSeasonalDetector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--timestamp-col", required=True)
    parser.add_argument("--value-col", required=True)
    parser.add_argument("--freq", default="D")
    parser.add_argument("--season-length", type=int, default=7)
    parser.add_argument("--windows", type=Path)
    parser.add_argument("--windows-key")
    args = parser.parse_args()

    frame = pd.read_csv(args.csv, parse_dates=[args.timestamp_col])
    series = frame.set_index(args.timestamp_col)[args.value_col].resample(args.freq).sum()
    detector = RobustSeasonalDetector(season_length=args.season_length).fit(series.to_numpy(dtype=np.float64))
    flags = detector.detect(series.to_numpy())
    flagged = series.index[flags]
    figures: dict[str, object] = {
        "periods": len(series),
        "flagged": [ts.isoformat() for ts in flagged],
        "scores": [round(float(s), 2) for s in detector.score(series.to_numpy())[flags]],
    }
    if args.windows is not None:
        windows = json.loads(args.windows.read_text())
        key = args.windows_key or next(k for k in windows if k.endswith("/" + args.csv.name))
        spans = windows[key]
        bounds = [(pd.Timestamp(a).floor(args.freq), pd.Timestamp(b).floor(args.freq)) for a, b in spans]
        found = sum(any(a <= ts <= b for ts in flagged) for a, b in bounds)
        outside = [ts for ts in flagged if not any(a <= ts <= b for a, b in bounds)]
        figures |= {
            "windows": len(bounds),
            "windows_found": found,
            "flagged_outside": len(outside),
            "outside": [ts.isoformat() for ts in outside],
        }
    emit("anomalies", figures | {"as_of": date.today().isoformat()})


if __name__ == "__main__":
    main()
