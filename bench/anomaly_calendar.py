"""Days the shop-wide daily series flags on a real shop's history, without and with its calendar.

    .venv/bin/python -m bench.anomaly_calendar [--parquet ../shared/data/retail/uci_online_retail.parquet]

The UCI Online Retail lines (a UK gift shop, 2010-12-01 .. 2011-12-09), net units a day as in
`bench.retail_backtest`, judged over the last 365 days by `/ml/anomalies`' detector in three settings, in
the same run: the statistical test alone (the baseline), with the practical minimums (`ANOMALY_MIN_CHANGE`
0.3, `ANOMALY_MIN_UNITS` 5), and with the shop's calendar as well (`SHOP_COUNTRY=GB`, `SHOP_SUBDIVISION=ENG`,
`SHOP_CLOSED_WEEKDAYS=sat`: the shop never sells on Saturdays). Prints one JSON line with each setting's
flagged days.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pandas as pd

from bench.common import UCI_SHOP_CALENDAR, emit
from bench.retail_backtest import LAST_DAY, daily_series
from salesflow.config import Settings
from salesflow.models.ml import DEFAULT_ANOMALY_MODEL, Bucket
from salesflow.services.ml.anomalies import STATISTICAL_ONLY, AnomalyRules, detect_anomalies
from salesflow.services.ml.series import Series

YEAR = 365


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parquet", type=Path, default=Path("../shared/data/retail/uci_online_retail.parquet")
    )
    args = parser.parse_args()
    raw = pd.read_parquet(args.parquet)
    lines = raw[~raw["InvoiceNo"].str.startswith("A") & (raw["UnitPrice"] >= 0)]
    y = daily_series(lines)
    last = LAST_DAY.date()
    days = [last - timedelta(days=len(y) - 1 - i) for i in range(len(y))]
    series = Series(values=y, starts=days, bucket=Bucket.DAILY, first_future=last + timedelta(days=1))
    defaults = Settings(dev_mode=True)
    practical = AnomalyRules(
        min_change=defaults.anomalies.min_change,
        min_units=defaults.anomalies.min_units,
        min_revenue=defaults.anomalies.min_revenue,
    )
    calendar = UCI_SHOP_CALENDAR
    settings = {
        "statistical only (baseline)": STATISTICAL_ONLY,
        "with practical minimums": practical,
        "with practical minimums and the GB calendar": AnomalyRules(
            min_change=practical.min_change,
            min_units=practical.min_units,
            min_revenue=practical.min_revenue,
            calendar=calendar,
        ),
    }
    year_start = last - timedelta(days=YEAR - 1)
    figures = {}
    for name, rules in settings.items():
        found = [
            a
            for a in detect_anomalies(series, DEFAULT_ANOMALY_MODEL, rules=rules).anomalies
            if a.date >= year_start
        ]
        figures[name] = {
            "flagged_days": len(found),
            "zero_days": sum(a.type == "ZERO_DROP" for a in found),
            "days": [f"{a.date} {a.type} {a.value:.0f} vs {a.expected:.0f}" for a in found],
            "holiday_notes": [a.explanation for a in found if "holiday" in a.explanation],
        }
    emit("anomaly_calendar", {"series_days": len(y), "judged": f"{year_start}..{last}", **figures})


if __name__ == "__main__":
    main()
