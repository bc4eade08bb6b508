"""A global LightGBM model across the UCI shop's products (prototype for issue 11), against seasonal naive and
the per-series `auto` in the same run, on the last 28 days held out.

    .venv/bin/python -m bench.global_model [--products 50] [--train-on top|all] [--split dev|final]
        [--features direct|recursive|recursive-encoded]

One model for all products, M5-style "direct" features that need no recursion over the 28 days: lags of 28 to
56 days, means of the 4 and 8 weeks that end 28 days back (the same weekday, and all days), day of week and of
month, and the product's price; targets scaled by each product's mean over its training days (a Tweedie
objective, as M5's winners used for counts with many zeros). `--train-on all` fits it on every product with
enough history (the scored products are still the top ones). Designs are compared with `--split dev` (the 28
days before the last 28 held out, everything after them dropped); `final` scores the last 28 days, once.
`--features recursive` uses recent lags instead (1–7, 14, 21, 28 days, means of the last 7 and 28 days) and
forecasts one day at a time, each forecast becoming the next day's lag; `recursive-encoded` adds the rolling
14-day mean, 28-day spread and share of zero days, the month, and the product and its stock-code family (first
three characters; the shop has no categories) as LightGBM categorical features. The mean of the global model
and `auto` is scored too. Parameters are common defaults. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from bench.common import emit
from bench.retail_backtest import HOLDOUT, LAST_DAY, SEASON
from salesflow.services.ml import metrics
from salesflow.services.ml.selection import AutoForecaster
from salesflow.services.ml.strategies import SeasonalNaive

LAGS = (28, 35, 42, 49, 56)
RECENT_LAGS = (1, 2, 3, 4, 5, 6, 7, 14, 21, 28)


def recent_features(
    s: pd.Series, days: pd.DatetimeIndex, price: float, encoding: tuple[int, int] | None = None
) -> pd.DataFrame:
    """One row per day from the days just before it (for a recursive forecast: one day at a time);
    `encoding` (product, family) adds the richer rolling statistics and the categorical codes."""
    frame = pd.DataFrame({f"lag_{k}": s.shift(k) for k in RECENT_LAGS})
    frame["mean_7"] = s.shift(1).rolling(7, min_periods=1).mean()
    frame["mean_28"] = s.shift(1).rolling(28, min_periods=7).mean()
    frame["weekday_mean"] = frame[["lag_7", "lag_14", "lag_21", "lag_28"]].mean(axis=1)
    frame["dow"] = days.day_of_week
    frame["dom"] = days.day
    frame["price"] = price
    if encoding is not None:
        frame["mean_14"] = s.shift(1).rolling(14, min_periods=1).mean()
        frame["std_28"] = s.shift(1).rolling(28, min_periods=7).std()
        frame["zero_share_28"] = (s.shift(1) == 0).rolling(28, min_periods=7).mean()
        frame["month"] = days.month
        frame["product"], frame["family"] = encoding
    return frame


def recursive_forecast(
    model: lgb.LGBMRegressor,
    y: np.ndarray,
    start: pd.Timestamp,
    price: float,
    columns: list[str],
    encoding: tuple[int, int] | None,
) -> np.ndarray:
    """28 days ahead, each day's forecast becoming the next day's lag 1 (y is already scaled)."""
    values = list(y)
    days = pd.date_range(start, periods=len(y) + HOLDOUT, freq="D")
    for step in range(HOLDOUT):
        n = len(y) + step
        window = pd.Series([*values[-60:], np.nan])
        row = recent_features(window, days[n - len(window) + 1 : n + 1], price, encoding).iloc[[-1]]
        values.append(max(float(model.predict(row[columns])[0]), 0.0))
    return np.asarray(values[len(y) :])


def features(y: np.ndarray, scale: float, price: float, start: pd.Timestamp) -> pd.DataFrame:
    """One row per day: what was known 28 days before it (NaN where the history is too short)."""
    n = len(y)
    s = pd.Series(y / scale)
    days = pd.date_range(start, periods=n, freq="D")
    frame = pd.DataFrame({f"lag_{k}": s.shift(k) for k in LAGS})
    frame["mean_4w_back"] = s.shift(HOLDOUT).rolling(28, min_periods=7).mean()
    frame["mean_8w_back"] = s.shift(HOLDOUT).rolling(56, min_periods=14).mean()
    frame["weekday_mean_back"] = frame[[f"lag_{k}" for k in LAGS]].mean(axis=1)
    frame["dow"] = days.day_of_week
    frame["dom"] = days.day
    frame["price"] = price
    frame["target"] = s
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parquet", type=Path, default=Path("../shared/data/retail/uci_online_retail.parquet")
    )
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--train-on", choices=("top", "all"), default="top")
    parser.add_argument("--split", choices=("dev", "final"), default="dev")
    parser.add_argument(
        "--features",
        choices=("direct", "recursive", "recursive-encoded"),
        default="direct",
        help="lags ≥ 28 days, or recent lags (with product encodings)",
    )
    args = parser.parse_args()
    raw = pd.read_parquet(args.parquet)
    lines = raw[~raw["InvoiceNo"].str.startswith("A") & (raw["UnitPrice"] >= 0)]
    products = lines[lines["StockCode"].str.match(r"^\d")]
    sold = products[products["Quantity"] > 0]
    revenue = (sold["Quantity"] * sold["UnitPrice"]).groupby(sold["StockCode"]).sum()
    top = set(revenue.nlargest(args.products).index)
    cut = HOLDOUT if args.split == "dev" else 0  # dev: the last 28 days are not even seen
    net = (
        lines.assign(day=lines["InvoiceDate"].dt.normalize()).groupby(["StockCode", "day"])["Quantity"].sum()
    )
    wide = net.unstack(0).reindex(pd.date_range(net.index.get_level_values(1).min(), LAST_DAY, freq="D"))
    wide = wide.fillna(0).clip(lower=0)
    if cut:
        wide = wide.iloc[:-cut]
    every = {}
    for code in wide.columns if args.train_on == "all" else sorted(top):
        column = wide[code].to_numpy(dtype=np.float64)
        selling = np.flatnonzero(column)
        if len(selling) and len(column) - selling[0] >= 3 * HOLDOUT and str(code)[:1].isdigit():
            every[code] = column[selling[0] :]
    series = {code: y for code, y in every.items() if code in top}
    prices = sold.groupby("StockCode")["UnitPrice"].median()
    started = time.perf_counter()
    train_rows, test_rows, scales = [], [], {}
    encoded = args.features == "recursive-encoded"
    products_seen = {code: i for i, code in enumerate(every)}
    families = {family: i for i, family in enumerate(sorted({str(code)[:3] for code in every}))}

    def encoding(code: str) -> tuple[int, int] | None:
        return (products_seen[code], families[str(code)[:3]]) if encoded else None

    end = LAST_DAY - pd.Timedelta(days=cut)
    for code, y in every.items():
        scale = float(np.mean(y[:-HOLDOUT])) or 1.0
        scales[code] = scale
        start = end - pd.Timedelta(days=len(y) - 1)
        if args.features != "direct":
            scaled = pd.Series(y / scale)
            days = pd.date_range(start, periods=len(y), freq="D")
            frame = recent_features(scaled, days, float(prices.get(code, 1.0)), encoding(code))
            frame = frame.assign(target=scaled, code=code)
            train_rows.append(frame.iloc[:-HOLDOUT].dropna(subset=["lag_28"]))
            continue
        frame = features(y, scale, float(prices.get(code, 1.0)), start).assign(code=code)
        train_rows.append(frame.iloc[:-HOLDOUT].dropna(subset=[f"lag_{LAGS[0]}"]))
        if code in series:
            test_rows.append(frame.iloc[-HOLDOUT:])
    train = pd.concat(train_rows, ignore_index=True)
    columns = [c for c in train.columns if c not in ("target", "code")]
    model = lgb.LGBMRegressor(
        objective="tweedie",
        tweedie_variance_power=1.2,
        n_estimators=400,
        learning_rate=0.03,
        num_leaves=31,
        min_child_samples=40,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=0,
        verbose=-1,
    )
    model.fit(
        train[columns], train["target"], categorical_feature=["product", "family"] if encoded else "auto"
    )
    global_forecasts: dict[str, np.ndarray] = {}
    if args.features != "direct":
        for code, y in series.items():
            start = end - pd.Timedelta(days=len(y) - 1)
            history_scaled = y[:-HOLDOUT] / scales[code]
            price = float(prices.get(code, 1.0))
            path = recursive_forecast(model, history_scaled, start, price, columns, encoding(code))
            global_forecasts[code] = path * scales[code]
    else:
        test = pd.concat(test_rows, ignore_index=True)
        test["forecast"] = model.predict(test[columns])
        for code in series:
            global_forecasts[code] = test.loc[test["code"] == code, "forecast"].to_numpy() * scales[code]
    global_s = time.perf_counter() - started
    rows = []
    for code, y in series.items():
        history, actual = y[:-HOLDOUT], y[-HOLDOUT:]
        ours = global_forecasts[code]
        naive = np.maximum(SeasonalNaive(season_length=SEASON).fit(history).predict(HOLDOUT)["mean"], 0)
        auto = AutoForecaster(season_length=SEASON, horizon=HOLDOUT).fit(history).predict(HOLDOUT)["mean"]
        rows.append(
            [metrics.mase(actual, f, history, SEASON) for f in (ours, naive, auto, (ours + auto) / 2)]
            + [float(np.abs(actual - f).sum()) for f in (ours, naive, auto, (ours + auto) / 2)]
            + [float(np.abs(actual).sum())]
        )
    table = np.array(rows)
    mase = np.nanmean(table[:, :4], axis=0)
    wape = table[:, 4:8].sum(axis=0) / table[:, 8].sum() * 100
    emit(
        "global_model",
        {
            "split": args.split,
            "features": args.features,
            "trained_on": f"{args.train_on} ({len(every)} products)",
            "products": len(series),
            "holdout_days": HOLDOUT,
            "mase": {
                "global_lgbm": round(mase[0], 3),
                "seasonal_naive": round(mase[1], 3),
                "auto": round(mase[2], 3),
                "mean_of_global_and_auto": round(mase[3], 3),
            },
            "mase_reduction_vs_seasonal_naive_pct": {
                "global_lgbm": round((1 - mase[0] / mase[1]) * 100, 1),
                "auto": round((1 - mase[2] / mase[1]) * 100, 1),
                "mean_of_global_and_auto": round((1 - mase[3] / mase[1]) * 100, 1),
            },
            "wape": {
                "global_lgbm": round(wape[0], 1),
                "seasonal_naive": round(wape[1], 1),
                "auto": round(wape[2], 1),
                "mean_of_global_and_auto": round(wape[3], 1),
            },
            "global_fit_and_predict_s": round(global_s, 2),
        },
    )


if __name__ == "__main__":
    main()
