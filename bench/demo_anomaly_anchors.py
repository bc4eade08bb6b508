"""The demo's injected shop-wide anomalies, found or missed, over many anchor dates ("today").

    .venv/bin/python -m bench.demo_anomaly_anchors [--anchors 730] [--first 2026-01-01]

For each anchor, the 40-product, 120-day test shop is generated (as the suite seeds it) with the injected
events sized at `EVENT_SIZE_SD` noise standard deviations, and at 0 (the fixed factors the demo used before:
a 3.5× spike and a 70% drop); the robust seasonal detector runs on the shop's daily units. Prints one JSON
line per size: injected shop-wide events missed, other days flagged, and the worst anchor.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta

import numpy as np

from bench.common import emit
from salesflow.data import demo
from salesflow.services.ml.anomalies import RobustSeasonalDetector

DAYS = 120


def daily_units(history: demo.DemoHistory, start: date) -> np.ndarray:
    sold_at = history.sales.set_index("id")["sale_date"].loc[history.items["sale_id"]].to_numpy()
    day = (sold_at.astype("datetime64[D]") - np.datetime64(start, "D")).astype(np.int64)
    return np.bincount(day, weights=history.items["quantity"].to_numpy(), minlength=DAYS).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=int, default=730)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2026, 1, 1))
    args = parser.parse_args()
    for size in (0.0, demo.EVENT_SIZE_SD):
        demo.EVENT_SIZE_SD = size
        missed, others = 0, []
        for offset in range(args.anchors):
            today = args.first + timedelta(days=offset)
            start = today - timedelta(days=DAYS - 1)
            catalog = demo.build_catalog(n_products=40, start=start, days=DAYS, seed=7)
            history = demo.generate_history(catalog, first_day=0, n_days=DAYS, total_days=DAYS)
            y = daily_units(history, start)
            flagged = set(np.flatnonzero(RobustSeasonalDetector().fit(y).detect(y)).tolist())
            events = history.events
            shop = {(d - start).days for d in events.loc[events["product_id"] == -1, "day"]}
            missed += len(shop - flagged)
            others.append(len(flagged - {(d - start).days for d in events["day"]}))
        emit(
            "demo_anomaly_anchors",
            {
                "event_size_sd": size or "fixed factors (before)",
                "anchors": args.anchors,
                "shop_events": 3 * args.anchors,
                "missed": missed,
                "other_days_flagged": int(sum(others)),
                "other_days_rate_pct": round(100 * sum(others) / (args.anchors * DAYS), 3),
                "worst_anchor_other_days": max(others),
            },
        )


if __name__ == "__main__":
    main()
