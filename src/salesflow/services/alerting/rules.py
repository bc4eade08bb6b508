"""The alert rules (pure, CPU work): stock states and recent sales → the conditions that hold now.

- Stock, one condition per product at most, the first that applies: `OUT_OF_STOCK` (stock ≤ 0),
  `LOW_STOCK` (below its threshold), `URGENT_REORDER` (covers less than the lead time), `DEAD_STOCK`
  (stock but no sale for `DEAD_STOCK_DAYS`). The first three are the legacy `/stock/alerts` rules.
- `SALES_ANOMALY`: the shop's daily units, and each product's with enough history, judged day by day on
  the days before (the detector's causal mode: a verdict does not change when later days arrive); the
  subject's latest anomalous day among the last `ALERT_ANOMALY_DAYS` complete days. A product out of stock
  gets no drop alert (its `OUT_OF_STOCK` alert says why it sells nothing).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from salesflow.models.alerts import AlertKind
from salesflow.models.ml import DEFAULT_ANOMALY_MODEL, Anomaly, Bucket
from salesflow.services.analytics.demand import DemandRule
from salesflow.services.analytics.stock import stock_alerts
from salesflow.services.ml.anomalies import AnomalyRules, detect_anomalies, too_small_to_matter
from salesflow.services.ml.series import Series
from salesflow.state.alerts import Condition

GLOBAL = "global"


def product_subject(product_id: int) -> str:
    return f"product:{product_id}"


def stock_conditions(states: pd.DataFrame, *, rule: DemandRule, dead_stock_days: int) -> list[Condition]:
    by_id: dict[int, dict[str, Any]] = {int(row["product_id"]): row for row in _records(states)}
    conditions = []
    for alert in stock_alerts(states, rule=rule):
        row = by_id[alert.product_id]
        numbers = {
            "current_stock": alert.current_stock,
            "threshold": alert.threshold,
            "coverage_days": alert.coverage_days,
            "daily_demand": _rounded(row["daily_demand"]),
            "lead_days": rule.lead_days,
            "suggested_order_qty": int(row["suggested_order_qty"]),
        }
        conditions.append(
            Condition(
                kind=alert.kind,
                subject=product_subject(alert.product_id),
                severity=alert.severity,
                message=alert.message,
                numbers=numbers,
                product_id=alert.product_id,
                product_sku=alert.sku,
                product_name=alert.name,
            )
        )
    for row in by_id.values():
        if row["status"] != "DEAD_STOCK" or row["current_stock"] <= 0:
            continue
        last = row["last_sale_date"]
        last_sale: date | None = None if pd.isna(last) else pd.Timestamp(last).date()
        since = f"last sold on {last_sale}" if last_sale else "never sold"
        conditions.append(
            Condition(
                kind=AlertKind.DEAD_STOCK,
                subject=product_subject(int(row["product_id"])),
                severity="low",
                message=(
                    f"{row['name']} ({row['sku']}): {int(row['current_stock'])} in stock, worth"
                    f" {row['stock_value']:,.2f}, without a sale for {dead_stock_days} days or more"
                    f" ({since})."
                ),
                numbers={
                    "current_stock": int(row["current_stock"]),
                    "stock_value": round(float(row["stock_value"]), 2),
                    "dead_stock_days": dead_stock_days,
                    "last_sale_date": last_sale.isoformat() if last_sale else None,
                },
                product_id=int(row["product_id"]),
                product_sku=str(row["sku"]),
                product_name=str(row["name"]),
            )
        )
    return conditions


def anomaly_conditions(
    lines: pd.DataFrame,
    products: pd.DataFrame,
    *,
    today: date,
    first_day: date,
    rules: AnomalyRules,
    recent_days: int,
    out_of_stock: set[int],
) -> list[Condition]:
    """Sales anomalies of the last `recent_days` complete days: the shop's, then each product's."""
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
    shop = _latest_anomaly(per_day.sum(axis=1).to_numpy(dtype=np.float64), starts, today, rules, recent_from)
    if shop is not None:
        conditions.append(_anomaly_condition(shop, GLOBAL, "The whole shop", None))
    names = products.set_index("product_id")[["sku", "name"]]
    for product_id in per_day.columns:
        if product_id not in names.index:
            continue
        found = _latest_anomaly(
            per_day[product_id].to_numpy(dtype=np.float64), starts, today, rules, recent_from
        )
        if found is None or (found[0].type != "HIGH_SPIKE" and int(product_id) in out_of_stock):
            continue
        sku, name = names.loc[product_id]
        product = (int(product_id), str(sku), str(name))
        conditions.append(
            _anomaly_condition(found, product_subject(int(product_id)), f"{name} ({sku})", product)
        )
    return conditions


def _latest_anomaly(
    values: np.ndarray, starts: list[date], today: date, rules: AnomalyRules, recent_from: date
) -> tuple[Anomaly, float] | None:
    """The latest anomaly since `recent_from` of a series judged from its first sale (days before it are
    "not selling yet", not "selling zero"), once it has `min_history_days` of history."""
    selling = np.flatnonzero(values)
    if not len(selling) or len(values) - selling[0] < rules.min_history_days:
        return None
    first = int(selling[0])
    if too_small_to_matter(values[first:], min_gap=rules.min_units, judged=(today - recent_from).days):
        return None  # most products of a shop: the detector would find nothing worth a person's time
    series = Series(values=values[first:], starts=starts[first:], bucket=Bucket.DAILY, first_future=today)
    detection = detect_anomalies(series, DEFAULT_ANOMALY_MODEL, rules=rules, causal=True)
    recent = [a for a in detection.anomalies if a.date >= recent_from]
    return (recent[-1], detection.threshold) if recent else None


def _anomaly_condition(
    found: tuple[Anomaly, float], subject: str, label: str, product: tuple[int, str, str] | None
) -> Condition:
    anomaly, threshold = found
    change = (anomaly.value - anomaly.expected) / anomaly.expected if anomaly.expected else None
    numbers: dict[str, Any] = {
        "day": anomaly.date.isoformat(),
        "type": anomaly.type,
        "observed": anomaly.value,
        "expected": anomaly.expected,
        "change_pct": round(change * 100, 1) if change is not None else None,
        "score": anomaly.score,
        "threshold": threshold,
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
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(name): value for name, value in row.items()} for row in frame.to_dict("records")]


def _rounded(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)
