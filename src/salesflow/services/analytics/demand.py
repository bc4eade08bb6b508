"""Demand per product: one rate used everywhere (stock analytics, alerts, reports), and what follows from it.

- `daily_demand`: units sold over the trailing `DEMAND_WINDOW_DAYS` full days (ending yesterday, so a partial
  today does not drag it down) ÷ the window's days, days without sales counted as zeros.
- reorder point: lead-time demand + safety stock. The lead-time variance is the larger of the observed daily
  variance × lead days and the Poisson variance (= the mean): counts of slow and intermittent sellers are at
  least as variable as Poisson, and their sample variance over a few weeks is unreliable.
  `ROP = ceil(μ_L + z·σ_L)` with `z` from `SERVICE_LEVEL`; zero when the product does not sell.
- suggested order: up to `ROP + daily_demand × REVIEW_PERIOD_DAYS`, less the stock on hand.
- ABC class by revenue over the year: A up to 80% of cumulative revenue, B up to 95%, C the rest.

Sums per product use `np.bincount` on product positions (lines of products missing from the catalogue
are ignored), so a year of a million lines costs a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DemandRule:
    window_days: int = 28
    lead_days: int = 7
    review_days: int = 14
    service_level: float = 0.95

    @property
    def floor(self) -> float:
        """Units a day below which a product has no recent demand: half a unit over the window (a rate or
        forecast this small says "does not sell", and dividing stock by it would be absurd)."""
        return 0.5 / self.window_days


@dataclass(frozen=True)
class SettledDemand:
    """A business day's forecast demand: units a day per product id, from the batch made on `basis`."""

    basis: date
    figures: dict[int, float]


class ProductLines:
    """Sale lines as arrays keyed by product position, sliced by business day without copying."""

    def __init__(self, lines: pd.DataFrame, product_ids: IntArray) -> None:
        self.product_ids = product_ids
        self.day = lines["day"].to_numpy().astype("datetime64[D]")
        self.quantity = lines["quantity"].to_numpy(dtype=np.float64)
        self.subtotal = lines["subtotal"].to_numpy(dtype=np.float64)
        self.position, self.known = _positions(lines["product_id"].to_numpy(dtype=np.int64), product_ids)
        self._sorted = bool(np.all(self.day[1:] >= self.day[:-1]))

    def between(self, first: date, last: date) -> slice | npt.NDArray[np.bool_]:
        """Rows whose day is in `first..last` (a slice when days are sorted, as they are but for DST)."""
        lo, hi = np.datetime64(first, "D"), np.datetime64(last, "D")
        if self._sorted:
            return slice(int(np.searchsorted(self.day, lo)), int(np.searchsorted(self.day, hi, side="right")))
        return (self.day >= lo) & (self.day <= hi)

    def total(
        self, values: FloatArray | None, rows: slice | npt.NDArray[np.bool_] = slice(None)
    ) -> FloatArray:
        """Σ `values` (or the line count) per product over `rows`."""
        known = self.known[rows]
        weights = None if values is None else values[rows][known]
        n = len(self.product_ids)
        return np.bincount(self.position[rows][known], weights=weights, minlength=n).astype(np.float64)

    def selling_days(self, rows: slice | npt.NDArray[np.bool_] = slice(None)) -> IntArray:
        """Distinct business days with a sale, per product, over `rows` (a product × day grid: linear)."""
        known = self.known[rows]
        days = self.day[rows][known].astype(np.int64)
        if not len(days):
            return np.zeros(len(self.product_ids), dtype=np.int64)
        offset = days - days.min()
        sold = np.zeros((len(self.product_ids), int(offset.max()) + 1), dtype=bool)
        sold[self.position[rows][known], offset] = True
        counts: IntArray = sold.sum(axis=1).astype(np.int64)
        return counts

    def last_day(self) -> npt.NDArray[np.datetime64]:
        """Each product's last business day with a sale (NaT when none)."""
        never = np.iinfo(np.int64).min
        last = np.full(len(self.product_ids), never)
        np.maximum.at(last, self.position[self.known], self.day[self.known].astype(np.int64))
        return np.where(last == never, np.datetime64("NaT"), last.astype("datetime64[D]"))


def demand_table(lines: ProductLines, *, as_of: date, rule: DemandRule) -> pd.DataFrame:
    """Per product: `daily_demand`, `demand_std`, `reorder_point` over the window ending yesterday."""
    first = as_of - timedelta(days=rule.window_days)
    rows = lines.between(first, as_of - timedelta(days=1))
    known = lines.known[rows]
    day_index = (lines.day[rows][known] - np.datetime64(first, "D")).astype(np.int64)
    n, days = len(lines.product_ids), rule.window_days
    cell = lines.position[rows][known] * days + day_index
    matrix = np.bincount(cell, weights=lines.quantity[rows][known], minlength=n * days).reshape(n, days)
    mean = matrix.mean(axis=1)  # units per product and day, zeros included
    variance = matrix.var(axis=1)
    return pd.DataFrame(
        {
            "daily_demand": mean,
            "demand_std": np.sqrt(variance),
            "reorder_point": reorder_points(mean, variance, rule),
        },
        index=pd.Index(lines.product_ids, name="product_id"),
    )


def _positions(ids: IntArray, product_ids: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Each id's position in the sorted `product_ids` (a lookup table for small ids), and which are known."""
    if len(product_ids) and product_ids[0] >= 0 and product_ids[-1] < 50_000_000:
        table = np.full(int(product_ids[-1]) + 1, -1, dtype=np.int64)
        table[product_ids] = np.arange(len(product_ids))
        inside = (ids >= 0) & (ids < len(table))
        positions = np.where(inside, table[np.clip(ids, 0, len(table) - 1)], -1)
    else:
        found = np.searchsorted(product_ids, ids)
        positions = np.where(
            (found < len(product_ids)) & (product_ids[np.minimum(found, len(product_ids) - 1)] == ids),
            found,
            -1,
        )
    known = positions >= 0
    return np.where(known, positions, 0), known


def reorder_points(mean: FloatArray, variance: FloatArray, rule: DemandRule) -> IntArray:
    """`ceil(μ_L + z·σ_L)`, lead-time variance floored at Poisson's; 0 for products that do not sell."""
    z = NormalDist().inv_cdf(rule.service_level)
    lead_mean = mean * rule.lead_days
    lead_sd = np.sqrt(np.maximum(variance * rule.lead_days, lead_mean))
    return np.where(mean > 0, np.ceil(lead_mean + z * lead_sd - 1e-9), 0).astype(np.int64)


def suggested_order(
    stock: IntArray, daily_demand: FloatArray, reorder_point: IntArray, rule: DemandRule
) -> IntArray:
    """Units to order now: up to the reorder point plus a review period of demand, when at or below ROP."""
    target = np.ceil(reorder_point + daily_demand * rule.review_days - 1e-9)
    due = (stock <= reorder_point) & (daily_demand > 0)
    return np.where(due, np.maximum(target - np.maximum(stock, 0), 0), 0).astype(np.int64)


def sales_at_risk(
    stock: IntArray, daily_demand: FloatArray, price: FloatArray, rule: DemandRule
) -> FloatArray:
    """Money lost before stock ordered at the next review could arrive, if nothing is ordered now:
    `max(μ·(lead + review) − stock, 0) × price` (for a product out of stock, all of that demand)."""
    short = np.maximum(daily_demand * (rule.lead_days + rule.review_days) - np.maximum(stock, 0), 0.0)
    return short * price


def abc_classes(revenue: FloatArray) -> npt.NDArray[np.str_]:
    """A/B/C by share of cumulative revenue (80% / 95%); products with no revenue are C."""
    order = np.argsort(-revenue, kind="stable")
    ordered = revenue[order]
    total = float(ordered.sum())
    classes = np.full(len(revenue), "C")
    if total <= 0:
        return classes
    before = (np.cumsum(ordered) - ordered) / total  # share reached before this product
    classes[order] = np.where(
        ordered <= 0, "C", np.where(before < 0.80, "A", np.where(before < 0.95, "B", "C"))
    )
    return classes
