"""Daily backtest on a real shop: the UCI Online Retail lines, last 28 days held out.

    .venv/bin/python -m bench.retail_backtest [--parquet ../shared/data/retail/uci_online_retail.parquet]

Series: the shop's total daily quantity and the daily quantity of its 50 best products by revenue (calendar
days, zeros included, from each series' first sale). Demand is net of cancellations (a `C` invoice line is a
negative quantity on its day; days are clipped at zero): otherwise an order cancelled the same day, like the
80,995 paper birdies of 2011-12-09, counts as demand. Fees and postage (stock codes that are not
products: POST, DOT, M, AMAZONFEE, ...) are not products. `auto` vs seasonal naive (m = 7) and Theta, in the
same run, on the last 28 days: mean MASE (scaled by the in-sample seasonal naive, m = 7) and WAPE, the
units forecast over the units sold (MASE and WAPE reward forecasting low on lumpy daily sales, since a day's
median is below its mean: a forecast that stock and money figures rest on must also sum right), the share of
held-out days inside `auto`'s 80% and 95% intervals (target: within 3 points of nominal), and two
figures no forecaster can have: the MASE of a flat forecast at each product's own held-out median (the best
flat forecast by MASE) and at its held-out mean (the flat forecast that sums right), known only in
hindsight. Our forecasts know the shop's calendar as the service does (`UCI_SHOP_CALENDAR`: closed on
Saturdays and around England's holidays, those days left out of the fit and forecast as 0; `--no-calendar` to
compare); the baselines do not.
`--skip-cancellations` reads the lines as the analytics tests do instead (cancellations dropped, cancelled
orders kept). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import UCI_SHOP_CALENDAR, candidates_option, emit
from salesflow.services.ml import metrics
from salesflow.services.ml.forecasting import closed_mask, fit_pooled, fitted_history
from salesflow.services.ml.pooled import POOLED_KINDS, averaged_with
from salesflow.services.ml.selection import SMOOTH_CANDIDATES, AutoForecaster
from salesflow.services.ml.strategies import SeasonalNaive, Theta

HOLDOUT = 28
SEASON = 7
LEVELS = (80, 95)


def daily_series(lines: pd.DataFrame) -> np.ndarray:
    """Net units per calendar day from the first day with a sale to the last day of the data."""
    per_day = lines.groupby(lines["InvoiceDate"].dt.normalize())["Quantity"].sum().clip(lower=0)
    selling = per_day[per_day > 0]
    if selling.empty:
        return np.zeros(0)
    days = pd.date_range(selling.index.min(), LAST_DAY, freq="D")
    return per_day.reindex(days, fill_value=0).to_numpy(dtype=np.float64)


LAST_DAY = pd.Timestamp("2011-12-09")


Job = tuple[np.ndarray, tuple[tuple[str, ...], ...], float | None, np.ndarray | None, date, frozenset[date]]


def evaluate(job: Job) -> tuple[float, ...]:
    """MASE of ours, seasonal naive and Theta; absolute errors and actuals (for WAPE); days inside our 80% and
    95% intervals; MASE of `auto` alone (without the pooled model's share); units forecast by ours, `auto`
    alone and seasonal naive; MASE of flat forecasts at the held-out open days' median and mean."""
    y, candidates, switch_ratio, pooled, first_day, closed = job
    train, actual = y[:-HOLDOUT], y[-HOLDOUT:]
    model = AutoForecaster(season_length=SEASON, horizon=HOLDOUT, smooth_candidates=candidates)
    if switch_ratio is not None:
        model.switch_ratio = switch_ratio
    forecast = alone = model.fit(fitted_history(train, first_day, closed)).predict(HOLDOUT, LEVELS)
    if pooled is not None and model.choice_.kind in POOLED_KINDS:
        forecast = averaged_with(forecast, pooled)
    shut = closed_mask(first_day, HOLDOUT, closed)
    for bands in (forecast, alone):
        for band in bands.values():
            band[shut] = 0.0
    ours = forecast["mean"]
    naive = np.maximum(SeasonalNaive(season_length=SEASON).fit(train).predict(HOLDOUT)["mean"], 0)
    theta = np.maximum(Theta(season_length=SEASON).fit(train).predict(HOLDOUT)["mean"], 0)
    hindsight = [np.where(shut, 0.0, level(actual[~shut])) for level in (np.median, np.mean)]
    return (
        metrics.mase(actual, ours, train, SEASON),
        metrics.mase(actual, naive, train, SEASON),
        float(np.abs(actual - ours).sum()),
        float(np.abs(actual - naive).sum()),
        float(np.abs(actual).sum()),
        float(actual.sum()),
        metrics.mase(actual, theta, train, SEASON),
        float(np.abs(actual - theta).sum()),
        *(float(metrics.inside(actual, forecast[f"lo-{lv}"], forecast[f"hi-{lv}"])) for lv in LEVELS),
        metrics.mase(actual, alone["mean"], train, SEASON),
        float(ours.sum()),
        float(alone["mean"].sum()),
        float(naive.sum()),
        *(metrics.mase(actual, flat, train, SEASON) for flat in hindsight),
    )


def pooled_forecasts(
    lines: pd.DataFrame, split: str, series: dict[str, np.ndarray], first_day: date, closed: frozenset[date]
) -> dict[str, np.ndarray]:
    """The pooled model of the service's batch, learned across every product's history before the held-out
    days (as the batch learns across all the shop's products), and its forecast of `series`."""
    per_product = [
        daily_series(group) for _, group in lines[lines["StockCode"].str.match(r"^\d")].groupby("StockCode")
    ]
    cut = 2 * HOLDOUT if split == "dev" else HOLDOUT
    histories = [y[:-cut] for y in per_product if len(y) > cut]
    model = fit_pooled(histories, first_day, closed)
    ahead = model.predict([fitted_history(y[:-HOLDOUT], first_day, closed) for y in series.values()], HOLDOUT)
    return {code: f for code, f in zip(series, ahead, strict=True) if f is not None}


def shop_closed_days(shop: np.ndarray, first_day: date, calendar: bool) -> frozenset[date]:
    """The days the shop was closed before `first_day` (its daily units: `shop`) and will be in the held-out
    days, as the service's calendar finds them."""
    if not calendar:
        return frozenset()
    days = [first_day - timedelta(days=len(shop) - i) for i in range(len(shop))]
    ahead = [first_day + timedelta(days=i) for i in range(HOLDOUT)]
    return UCI_SHOP_CALENDAR.closed_days(days, shop, ahead)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parquet", type=Path, default=Path("../shared/data/retail/uci_online_retail.parquet")
    )
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--skip-cancellations", action="store_true")
    # dev: the last 28 days are dropped and the 28 before them held out, to choose designs on.
    parser.add_argument("--split", choices=("dev", "final"), default="final")
    parser.add_argument(
        "--candidates",
        type=candidates_option,
        default=SMOOTH_CANDIDATES,
        help="auto's smooth candidates, the default first: theta+ets,theta,... (to choose on --split dev)",
    )
    parser.add_argument(
        "--switch-ratio", type=float, help="instead of auto's default (to choose on --split dev)"
    )
    parser.add_argument(
        "--calendar",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="our forecasts know the shop's calendar (closed on Saturdays and around England's holidays)",
    )
    parser.add_argument(
        "--pooled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="average smooth products with the batch's pooled model (mase_auto_alone: without it)",
    )
    args = parser.parse_args()
    raw = pd.read_parquet(args.parquet)
    kept = ~raw["InvoiceNo"].str.startswith("A") & (raw["UnitPrice"] >= 0)
    if args.skip_cancellations:
        kept &= ~raw["InvoiceNo"].str.startswith("C") & (raw["Quantity"] > 0)
    lines = raw[kept]
    products = lines[lines["StockCode"].str.match(r"^\d")]  # product codes are numbers; fees are words
    sold = products[products["Quantity"] > 0]
    revenue = (sold["Quantity"] * sold["UnitPrice"]).groupby(sold["StockCode"]).sum()
    top = revenue.nlargest(args.products).index
    candidates = {code: daily_series(lines[lines["StockCode"] == code]) for code in top}
    if args.split == "dev":
        candidates = {code: y[:-HOLDOUT] for code, y in candidates.items()}
    # A product first sold within the held-out weeks has nothing to learn from.
    usable = {code: y for code, y in candidates.items() if len(y) >= 3 * HOLDOUT}
    shop = daily_series(lines)
    series = {"GLOBAL": shop[:-HOLDOUT] if args.split == "dev" else shop} | usable
    first_day = (LAST_DAY - pd.Timedelta(days=2 * HOLDOUT - 1 if args.split == "dev" else HOLDOUT - 1)).date()
    closed = shop_closed_days(series["GLOBAL"][:-HOLDOUT], first_day, args.calendar)
    started = time.perf_counter()
    pooled = pooled_forecasts(lines, args.split, usable, first_day, closed) if args.pooled else {}
    with ProcessPoolExecutor(max_workers=2) as pool:
        jobs: list[Job] = [
            (y, args.candidates, args.switch_ratio, pooled.get(code), first_day, closed)
            for code, y in series.items()
        ]
        results = dict(zip(series, pool.map(evaluate, jobs), strict=True))
    wall = time.perf_counter() - started
    product_rows = [results[code] for code in usable]

    def summary(rows: list[tuple[float, ...]]) -> dict[str, float]:
        mase_ours = float(np.nanmean([r[0] for r in rows]))
        mase_naive = float(np.nanmean([r[1] for r in rows]))
        wape_ours = sum(r[2] for r in rows) / sum(r[4] for r in rows) * 100
        wape_naive = sum(r[3] for r in rows) / sum(r[4] for r in rows) * 100
        days = HOLDOUT * len(rows)
        sold = sum(r[5] for r in rows)
        return {
            "mase": round(mase_ours, 3),
            "mase_seasonal_naive": round(mase_naive, 3),
            "mase_reduction_pct": round((1 - mase_ours / mase_naive) * 100, 1),
            "mase_theta": round(float(np.nanmean([r[6] for r in rows])), 3),
            "mase_auto_alone": round(float(np.nanmean([r[10] for r in rows])), 3),
            "wape": round(wape_ours, 1),
            "wape_seasonal_naive": round(wape_naive, 1),
            "wape_reduction_pct": round((1 - wape_ours / wape_naive) * 100, 1),
            "wape_theta": round(sum(r[7] for r in rows) / sum(r[4] for r in rows) * 100, 1),
            "mase_hindsight_median": round(float(np.nanmean([r[14] for r in rows])), 3),
            "mase_hindsight_mean": round(float(np.nanmean([r[15] for r in rows])), 3),
            "units_vs_sold": round(sum(r[11] for r in rows) / sold, 3),
            "units_vs_sold_auto_alone": round(sum(r[12] for r in rows) / sold, 3),
            "units_vs_sold_seasonal_naive": round(sum(r[13] for r in rows) / sold, 3),
            **{
                f"coverage_{lv}_pct": round(sum(r[8 + i] for r in rows) / days * 100, 1)
                for i, lv in enumerate(LEVELS)
            },
        }

    emit(
        "retail_backtest",
        {
            "split": args.split,
            "candidates": ",".join("+".join(c) for c in args.candidates),
            "switch_ratio": args.switch_ratio,
            "pooled_products": len(pooled),
            "calendar": args.calendar,
            "closed_held_out_days": int(closed_mask(first_day, HOLDOUT, closed).sum()),
            "cancellations": "skipped" if args.skip_cancellations else "netted",
            "holdout_days": HOLDOUT,
            "global": summary([results["GLOBAL"]]),
            "top_products": summary(product_rows),
            "products": len(product_rows),
            "too_new_to_backtest": len(candidates) - len(usable),
            "wall_s": round(wall, 1),
        },
    )


if __name__ == "__main__":
    main()
