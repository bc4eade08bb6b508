"""Demand per product: one rate used everywhere (stock analytics, alerts, reports), and what follows from it.

- `daily_demand`: units sold over the trailing `DEMAND_WINDOW_DAYS` full days (ending yesterday, so a partial
  today does not drag it down) ÷ the window's days, days without sales counted as zeros.
- reorder point: lead-time demand + safety stock. The lead-time variance is the larger of the observed daily
  variance × lead days and the Poisson variance (= the mean): counts of slow and intermittent sellers are at
  least as variable as Poisson, and their sample variance over a few weeks is unreliable.
  `ROP = ceil(μ_L + z·σ_L)` with `z` from `SERVICE_LEVEL`; zero when the product does not sell.
- suggested order: up to `ROP + daily_demand × REVIEW_PERIOD_DAYS`, less the stock on hand.
- ABC class by revenue over the year: A up to 80% of cumulative revenue, B up to 95%, C the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DemandRule:
    window_days: int = 28
    lead_days: int = 7
    review_days: int = 14
    service_level: float = 0.95


def demand_table(
    lines: pd.DataFrame, product_ids: np.ndarray, *, as_of: date, rule: DemandRule
) -> pd.DataFrame:
    """Per product (indexed like `product_ids`): `daily_demand`, `demand_std`, `reorder_point`."""
    first = pd.Timestamp(as_of - timedelta(days=rule.window_days))
    last = pd.Timestamp(as_of - timedelta(days=1))
    recent = lines[(lines["day"] >= first) & (lines["day"] <= last)]
    per_day = recent.groupby(["product_id", "day"], sort=False)["quantity"].sum()
    units = per_day.groupby(level=0).sum().reindex(product_ids, fill_value=0).to_numpy(dtype=np.float64)
    squares = (
        (per_day**2).groupby(level=0).sum().reindex(product_ids, fill_value=0).to_numpy(dtype=np.float64)
    )
    n = rule.window_days
    mean = units / n
    variance = np.maximum(squares / n - mean**2, 0.0)  # zeros of the days without sales included
    return pd.DataFrame(
        {
            "daily_demand": mean,
            "demand_std": np.sqrt(variance),
            "reorder_point": reorder_points(mean, variance, rule),
        },
        index=pd.Index(product_ids, name="product_id"),
    )


def reorder_points(mean: np.ndarray, variance: np.ndarray, rule: DemandRule) -> np.ndarray:
    """`ceil(μ_L + z·σ_L)`, lead-time variance floored at Poisson's; 0 for products that do not sell."""
    z = NormalDist().inv_cdf(rule.service_level)
    lead_mean = mean * rule.lead_days
    lead_sd = np.sqrt(np.maximum(variance * rule.lead_days, lead_mean))
    return np.where(mean > 0, np.ceil(lead_mean + z * lead_sd - 1e-9), 0).astype(np.int64)


def suggested_order(
    stock: np.ndarray, daily_demand: np.ndarray, reorder_point: np.ndarray, rule: DemandRule
) -> np.ndarray:
    """Units to order now: up to the reorder point plus a review period of demand, when at or below ROP."""
    target = np.ceil(reorder_point + daily_demand * rule.review_days - 1e-9)
    due = (stock <= reorder_point) & (daily_demand > 0)
    return np.where(due, np.maximum(target - np.maximum(stock, 0), 0), 0).astype(np.int64)


def abc_classes(revenue: pd.Series) -> pd.Series:
    """A/B/C by share of cumulative revenue (80% / 95%); products with no revenue are C."""
    ordered = revenue.sort_values(ascending=False, kind="stable")
    total = float(ordered.sum())
    if total <= 0:
        return pd.Series("C", index=revenue.index)
    before = (ordered.cumsum() - ordered) / total  # share reached before this product
    classes = np.where(ordered <= 0, "C", np.where(before < 0.80, "A", np.where(before < 0.95, "B", "C")))
    return pd.Series(classes, index=ordered.index).reindex(revenue.index)
