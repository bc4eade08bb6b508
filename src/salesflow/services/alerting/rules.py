"""The alert rules (pure, CPU work): stock states and recent sales → the conditions that hold now.

- Stock, one condition per product at most, the first that applies: `OUT_OF_STOCK` (stock ≤ 0),
  `LOW_STOCK` (below its threshold, with an order to place), `URGENT_REORDER` (covers less than the lead
  time), `DEAD_STOCK` (stock but no sale for `DEAD_STOCK_DAYS`). The first three are the `/stock/alerts`
  rules. Products in stock that never sold are one `DEAD_STOCK` summary (their count and value), not an
  alert each.
- `SALES_ANOMALY`: the shop's daily units, and those of each product whose anomaly matters to the shop (a
  revenue gap of `ALERT_ANOMALY_MIN_SHARE` % of an average day's revenue), judged day by day on the days
  before (the detector's causal mode: a verdict does not change when later days arrive); the subject's
  latest anomalous day among the last `ALERT_ANOMALY_DAYS` complete days. A product's spike is news only
  above everything it sold on one day in the year before (a wholesale shop's bulk orders recur); a product
  out of stock gets no drop alert (its `OUT_OF_STOCK` alert says why it sells nothing). The judgement of
  past days is the same all day: the service keeps it (`AlertService`); only the stock rules run each check.

Every condition carries the money at stake (`at_stake`), by which alerts are ranked: sales at risk for the
stock kinds (`sales_at_risk`: what is lost before an order placed now could arrive), the value tied up for
dead stock, and the day's revenue gap for an anomaly. Severity has hysteresis: `sticky_severity` is the
severity under bands widened by `HYSTERESIS`, which an open alert keeps until it is clear of them, and a
product just past the lead time keeps an open `URGENT_REORDER` alert (`hold_only`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from salesflow.formatting import Formats
from salesflow.models.alerts import AlertKind, Severity
from salesflow.models.analytics import StockStatus
from salesflow.models.ml import DEFAULT_ANOMALY_MODEL, Anomaly, Bucket
from salesflow.services.analytics.demand import DemandRule
from salesflow.services.analytics.stock import alerting, stock_alert, stock_severity
from salesflow.services.ml.anomalies import AnomalyRules, detect_anomalies, too_small_to_matter
from salesflow.services.ml.series import Series
from salesflow.state.alerts import Condition

GLOBAL = "global"
NEVER_SOLD = "catalogue:never-sold"
HYSTERESIS = 1.25  # an alert eases a level only when 25% clear of the boundary it crossed
YEAR_DAYS = 365


def product_subject(product_id: int) -> str:
    return f"product:{product_id}"


def stock_conditions(
    states: pd.DataFrame, *, rule: DemandRule, dead_stock_days: int, formats: Formats
) -> list[Condition]:
    flagged = alerting(states, rule)
    conditions = [_stock_condition(row, rule) for row in _records(flagged)]
    near = alerting(states, rule, margin=HYSTERESIS)
    conditions += [
        _stock_condition(row, rule, hold_only=True)
        for row in _records(near[~near["product_id"].isin(flagged["product_id"])])
    ]
    dead = states[(states["status"] == StockStatus.DEAD_STOCK) & (states["current_stock"] > 0)]
    never = dead["last_sale_date"].isna()
    conditions += [_dead_stock_condition(row, dead_stock_days, formats) for row in _records(dead[~never])]
    if never.any():
        conditions.append(_never_sold_condition(dead[never], formats))
    return conditions


def _stock_condition(row: dict[str, Any], rule: DemandRule, *, hold_only: bool = False) -> Condition:
    alert = stock_alert(row, rule)
    numbers = {
        "current_stock": alert.current_stock,
        "threshold": alert.threshold,
        "coverage_days": alert.coverage_days,
        "daily_demand": _rounded(row["daily_demand"]),
        "demand_source": str(row["demand_source"]),
        "lead_days": rule.lead_days,
        "suggested_order_qty": int(row["suggested_order_qty"]),
        "unit_price": _rounded(row["unit_price"]),
        "sales_at_risk": alert.at_stake,
    }
    if alert.kind == AlertKind.OUT_OF_STOCK:
        numbers["lost_sales_per_day"] = _rounded(row["daily_demand"] * row["unit_price"])
    return Condition(
        kind=alert.kind,
        subject=product_subject(alert.product_id),
        severity=alert.severity,
        message=alert.message,
        numbers=numbers,
        product_id=alert.product_id,
        product_sku=alert.sku,
        product_name=alert.name,
        at_stake=alert.at_stake,
        sticky_severity=stock_severity(row, rule, margin=HYSTERESIS),
        hold_only=hold_only,
    )


def _dead_stock_condition(row: dict[str, Any], dead_stock_days: int, formats: Formats) -> Condition:
    last_sale = pd.Timestamp(row["last_sale_date"]).date()
    value = round(float(row["stock_value"]), 2)
    return Condition(
        kind=AlertKind.DEAD_STOCK,
        subject=product_subject(int(row["product_id"])),
        severity=Severity.LOW,
        message=(
            f"{row['name']} ({row['sku']}): {int(row['current_stock']):,} in stock,"
            f" worth {formats.money(value)}, without a sale for {dead_stock_days} days or more"
            f" (last sold on {last_sale})."
        ),
        numbers={
            "current_stock": int(row["current_stock"]),
            "stock_value": value,
            "dead_stock_days": dead_stock_days,
            "last_sale_date": last_sale.isoformat(),
        },
        product_id=int(row["product_id"]),
        product_sku=str(row["sku"]),
        product_name=str(row["name"]),
        at_stake=value,
    )


def _never_sold_condition(never: pd.DataFrame, formats: Formats) -> Condition:
    """One line for the catalogue's products in stock that never sold (new ones, or never launched)."""
    value = round(float(never["stock_value"].sum()), 2)
    count = len(never)
    return Condition(
        kind=AlertKind.DEAD_STOCK,
        subject=NEVER_SOLD,
        severity=Severity.LOW,
        message=(
            f"{count:,} products in stock have never sold, worth {formats.money(value)} in all"
            " (new products, or ones to take off the shelf)."
        ),
        numbers={
            "products": count,
            "stock_value": value,
            "units": int(never["current_stock"].sum()),
        },
        at_stake=value,
    )


def anomaly_conditions(
    lines: pd.DataFrame,
    states: pd.DataFrame,
    *,
    today: date,
    first_day: date,
    rules: AnomalyRules,
    recent_days: int,
    min_share: float,
) -> list[Condition]:
    """Sales anomalies of the last `recent_days` complete days: the shop's, then each product's whose
    anomaly is news for it and matters to the shop (a revenue gap of `min_share` % of an average day's
    revenue or more)."""
    days = pd.date_range(first_day, today - timedelta(days=1), freq="D")
    if len(days) == 0:
        return []
    per_day = (
        lines.groupby(["day", "product_id"], sort=False)["quantity"]
        .sum()
        .unstack(fill_value=0)
        .reindex(days.astype("datetime64[s]"), fill_value=0.0)
    )
    starts = [d.date() for d in days]
    recent_from = today - timedelta(days=recent_days)
    conditions = []
    units = float(lines["quantity"].sum())
    shop_price = float(lines["subtotal"].sum()) / units if units > 0 else 0.0
    shop = _latest_anomaly(per_day.sum(axis=1).to_numpy(dtype=np.float64), starts, today, rules, recent_from)
    if shop is not None:
        conditions.append(_anomaly_condition(shop, GLOBAL, "The whole shop", None, shop_price))
    # A product's anomaly matters to the shop when its revenue gap is a share of an average day's revenue.
    days_selling = max(int((per_day.sum(axis=1) > 0).sum()), 1)
    money_floor = float(lines["subtotal"].sum()) / days_selling * min_share / 100
    catalogue = states.set_index("product_id")[["sku", "name", "unit_price"]]
    known = catalogue.loc[per_day.columns.intersection(catalogue.index)]
    for product_id, sku, name, price in zip(
        known.index, known["sku"], known["name"], known["unit_price"].astype(float), strict=True
    ):
        if price <= 0:
            continue
        values = per_day[product_id].to_numpy(dtype=np.float64)
        found = _latest_anomaly(values, starts, today, rules, recent_from, min_gap=money_floor / price)
        if found is None or not _news(found[0], values, starts):
            continue
        if abs(found[0].value - found[0].expected) * price < money_floor:
            continue
        product = (int(product_id), str(sku), str(name))
        label = f"{name} ({sku})"
        conditions.append(_anomaly_condition(found, product_subject(int(product_id)), label, product, price))
    return conditions


def _news(anomaly: Anomaly, values: np.ndarray, starts: list[date]) -> bool:
    """Whether a product's spike is news: only above every day of the year before it (a bulk order like the
    ones it had is not)."""
    if anomaly.type != "HIGH_SPIKE":
        return True
    position = starts.index(anomaly.date)
    before = values[max(0, position - YEAR_DAYS) : position]
    return not len(before) or anomaly.value > float(before.max())


def explained_drops_left_out(conditions: list[Condition], states: pd.DataFrame) -> list[Condition]:
    """Without the drops of products out of stock now: their `OUT_OF_STOCK` alert says why they sell
    nothing."""
    out = set(states.loc[states["status"] == StockStatus.OUT_OF_STOCK, "product_id"].astype(int))
    return [c for c in conditions if not (c.product_id in out and c.numbers.get("type") != "HIGH_SPIKE")]


def _latest_anomaly(
    values: np.ndarray,
    starts: list[date],
    today: date,
    rules: AnomalyRules,
    recent_from: date,
    *,
    min_gap: float = 0.0,
) -> tuple[Anomaly, float] | None:
    """The latest anomaly since `recent_from` of a series judged from its first sale (days before it are
    "not selling yet", not "selling zero"), once it has `min_history_days` of history."""
    selling = np.flatnonzero(values)
    if not len(selling) or len(values) - selling[0] < rules.min_history_days:
        return None
    first = int(selling[0])
    gap = max(rules.min_units, min_gap)
    if too_small_to_matter(values[first:], min_gap=gap, judged=(today - recent_from).days):
        return None  # most products of a shop: the detector would find nothing worth a person's time
    series = Series(values=values[first:], starts=starts[first:], bucket=Bucket.DAILY, first_future=today)
    detection = detect_anomalies(series, DEFAULT_ANOMALY_MODEL, rules=rules, causal=True)
    recent = [a for a in detection.anomalies if a.date >= recent_from]
    return (recent[-1], detection.threshold) if recent else None


def _anomaly_condition(
    found: tuple[Anomaly, float],
    subject: str,
    label: str,
    product: tuple[int, str, str] | None,
    unit_price: float,
) -> Condition:
    anomaly, threshold = found
    # A change in percent of almost nothing expected is a meaningless huge number: none then.
    change = (anomaly.value - anomaly.expected) / anomaly.expected if anomaly.expected >= 0.5 else None
    at_stake = round(abs(anomaly.value - anomaly.expected) * unit_price, 2)
    numbers: dict[str, Any] = {
        "day": anomaly.date.isoformat(),
        "type": anomaly.type,
        "observed": anomaly.value,
        "expected": anomaly.expected,
        "change_pct": round(change * 100, 1) if change is not None else None,
        "score": anomaly.score,
        "threshold": threshold,
        "revenue_gap": at_stake,
    }
    product_id, sku, name = product if product else (None, None, None)
    return Condition(
        kind=AlertKind.SALES_ANOMALY,
        subject=subject,
        severity=anomaly.severity,
        message=f"{label}: {anomaly.explanation}",
        numbers=numbers,
        product_id=product_id,
        product_sku=sku,
        product_name=name,
        at_stake=at_stake,
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(name): value for name, value in row.items()} for row in frame.to_dict("records")]


def _rounded(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)
