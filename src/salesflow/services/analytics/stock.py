"""Stock analytics pipeline (UC3) and stock alerts (UC4): load → per-product state → KPIs / alerts → cache.

Stages, in order:
1. load: products (stock, threshold, price) and a year of sale lines from the line cache.
2. `product_states` (pure, vectorised): demand (demand.py), last sale, status, coverage, reorder
   point, suggested order, ABC class.
3. `stock_kpis` / `stock_alerts`: what the screens show.
4. shape: the contract's models, serialised once and cached per (scope, kind, as-of day).

Status, in this order (frontend-contract.md call 2): `OUT_OF_STOCK` if stock ≤ 0; `LOW_STOCK` if
stock < threshold (Java's strict rule; a null threshold is 10); `DEAD_STOCK` if no sale for
`DEAD_STOCK_DAYS`; else OK. `rotation_per_year` = units sold over the last 365 days (annualised when
less history is known) ÷ units in stock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal, Protocol

import anyio
import numpy as np
import pandas as pd

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines import SaleLineCache
from salesflow.formatting import Formats
from salesflow.models.alerts import SEVERITY_RANK, AlertKind, Severity
from salesflow.models.analytics import (
    Period,
    ProductStock,
    StockAlert,
    StockAlertKind,
    StockAlerts,
    StockAnalytics,
    StockKpis,
    StockStatus,
)
from salesflow.models.cache import CachePipeline
from salesflow.services.analytics import demand
from salesflow.services.analytics.windows import period_label

YEAR_DAYS = 365
OVER_A_YEAR = 366.0  # coverage is capped here: read it as "over a year"
MIN_SELLING_DAYS = 2  # days with a sale in the year before a product has a demand rate


class DemandForecastSource(Protocol):
    """Forecast units a day per product, settled once per business day (the ML pipeline provides it;
    analytics owns this port, so it imports nothing from ML)."""

    async def daily_demand(self, as_of: date) -> demand.SettledDemand | None:
        """The day's settled forecasts, or None: the trailing rate is the day's demand."""
        ...


class StockAnalyticsService:
    """`GET /analytics/stock` and `GET /stock/alerts`."""

    def __init__(
        self,
        lines: SaleLineCache,
        cache: Cache,
        *,
        ttl_seconds: int,
        rule: demand.DemandRule,
        dead_stock_days: int = 90,
        language: str = "en",
        mode: Literal["dev", "prod"] = "prod",
        forecasts: DemandForecastSource | None = None,
    ) -> None:
        self.lines = lines
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.rule = rule
        self.dead_stock_days = dead_stock_days
        self.language = language
        self.mode = mode
        self.forecasts = forecasts

    async def report_json(self, period: Period, *, scope: str) -> bytes:
        """Stock KPIs and the products that need attention, as JSON bytes (cached)."""
        as_of = self.lines.today()
        forecast = await self._forecast(as_of)
        # Keyed by the demand in use: when the day's forecast batch lands, the next read computes afresh.
        key = cache_key(
            CachePipeline.ANALYTICS, scope, kind="stock", period=period, as_of=as_of, demand=_demand(forecast)
        )

        async def compute() -> bytes:
            states = await self._states(as_of, forecast)
            language, lead_days = self.language, self.rule.lead_days
            # Shaping hundreds of product rows is CPU work too: off the event loop like the states.
            return await anyio.to_thread.run_sync(
                lambda: (
                    _stock_report(states, period, as_of, language=language, lead_days=lead_days)
                    .model_dump_json()
                    .encode()
                )
            )

        return await self.cache.get_or_compute(key, self.ttl_seconds, compute, encode=bytes, decode=bytes)

    async def alerts_json(self, *, scope: str) -> bytes:
        """Out-of-stock, low-stock and urgent-reorder alerts, as JSON bytes (cached)."""
        as_of = self.lines.today()
        forecast = await self._forecast(as_of)
        key = cache_key(CachePipeline.ANALYTICS, scope, kind="alerts", as_of=as_of, demand=_demand(forecast))

        async def compute() -> bytes:
            states = await self._states(as_of, forecast)
            rule, mode = self.rule, self.mode
            return await anyio.to_thread.run_sync(
                lambda: (
                    StockAlerts(mode=mode, as_of=as_of, alerts=stock_alerts(states, rule=rule))
                    .model_dump_json()
                    .encode()
                )
            )

        return await self.cache.get_or_compute(key, self.ttl_seconds, compute, encode=bytes, decode=bytes)

    async def product_states(self, as_of: date) -> pd.DataFrame:
        """Every product's stock state on `as_of` (see `product_states`)."""
        return await self._states(as_of, await self._forecast(as_of))

    async def _forecast(self, as_of: date) -> demand.SettledDemand | None:
        return await self.forecasts.daily_demand(as_of) if self.forecasts is not None else None

    async def _states(self, as_of: date, forecast: demand.SettledDemand | None) -> pd.DataFrame:
        """The states with the day's forecast demand where the batch has run (else the trailing rate)."""
        lookback = max(YEAR_DAYS, self.dead_stock_days + 1, self.rule.window_days + 1)
        lines = await self.lines.window(as_of - timedelta(days=lookback), as_of)
        products = await self.lines.products()
        rule, dead_days = self.rule, self.dead_stock_days
        return await anyio.to_thread.run_sync(
            lambda: product_states(
                products,
                lines,
                as_of=as_of,
                rule=rule,
                dead_stock_days=dead_days,
                forecast_daily=forecast.figures if forecast else None,
            )
        )


def _demand(forecast: demand.SettledDemand | None) -> str:
    return "rate" if forecast is None else f"forecast-{forecast.basis.isoformat()}"


def product_states(
    products: pd.DataFrame,
    lines: pd.DataFrame,
    *,
    as_of: date,
    rule: demand.DemandRule,
    dead_stock_days: int,
    forecast_daily: dict[int, float] | None = None,
) -> pd.DataFrame:
    """One row per product: stock, status, demand, coverage, reorder point, suggested order, ABC class."""
    products = products.sort_values("product_id", kind="stable")
    ids = products["product_id"].to_numpy(dtype=np.int64)
    stock = products["stock_quantity"].to_numpy(dtype=np.int64)
    threshold = products["low_stock_threshold"].to_numpy(dtype=np.int64)
    price = products["price"].to_numpy(dtype=np.float64)
    by_product = demand.ProductLines(lines, ids)
    table = demand.demand_table(by_product, as_of=as_of, rule=rule)
    rate = table["daily_demand"].to_numpy()
    reorder_point = table["reorder_point"].to_numpy()
    source = np.full(len(ids), "rate", dtype=object)
    if forecast_daily:
        # The day's forecasts (batch path) replace the trailing rate where they exist; the observed daily
        # variability still sizes the safety stock.
        forecast = np.array([forecast_daily.get(int(pid), np.nan) for pid in ids])
        has_forecast = ~np.isnan(forecast)
        rate = np.where(has_forecast, forecast, rate)
        variance = table["demand_std"].to_numpy() ** 2
        reorder_point = demand.reorder_points(rate, variance, rule)
        source[has_forecast] = "forecast"
    year = by_product.between(as_of - timedelta(days=YEAR_DAYS - 1), as_of)
    # Below the floor a product has no recent demand: no coverage, no reorder, no astronomical figure. Nor
    # has one that sold on a single day of the year: one order (however large) is not a daily rate.
    regular = (rate >= rule.floor) & (by_product.selling_days(year) >= MIN_SELLING_DAYS)
    rate = np.where(regular, rate, 0.0)
    reorder_point = np.where(rate > 0, reorder_point, 0)
    last_sale = by_product.last_day()
    no_recent_sale = np.isnat(last_sale) | (
        last_sale <= np.datetime64(as_of - timedelta(days=dead_stock_days))
    )
    status = np.select(
        [stock <= 0, stock < threshold, no_recent_sale],
        [StockStatus.OUT_OF_STOCK, StockStatus.LOW_STOCK, StockStatus.DEAD_STOCK],
        default=StockStatus.OK,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(rate > 0, np.minimum(np.maximum(stock, 0) / rate, OVER_A_YEAR), np.nan)
    return pd.DataFrame(
        {
            "product_id": ids,
            "sku": products["sku"].to_numpy(dtype=object),
            "name": products["name"].to_numpy(dtype=object),
            "status": status,
            "current_stock": stock,
            "min_stock": threshold,
            "unit_price": price,
            "stock_value": np.maximum(stock, 0) * price,
            "last_sale_date": last_sale,
            "coverage_days": coverage,
            "daily_demand": rate,
            "demand_source": source,
            "reorder_point": reorder_point,
            "suggested_order_qty": demand.suggested_order(stock, rate, reorder_point, rule),
            "sales_at_risk": demand.sales_at_risk(stock, rate, price, rule),
            "abc_class": demand.abc_classes(by_product.total(by_product.subtotal, year)),
            "units_last_year": by_product.total(by_product.quantity, year),
            "history_days": _history_days(lines, as_of),
        }
    )


def stock_kpis(states: pd.DataFrame, *, lead_days: int) -> StockKpis:
    """The contract's KPIs; see the module docstring for the formulas."""
    n = len(states)
    status = states["status"]
    coverage = states["coverage_days"]
    selling = coverage.notna()
    units_in_stock = float(states["current_stock"].clip(lower=0).sum())
    history_days = int(states["history_days"].iloc[0]) if n else 0
    yearly_units = float(states["units_last_year"].sum()) * YEAR_DAYS / max(history_days, 1)
    low = int((status == StockStatus.LOW_STOCK).sum())
    return StockKpis(
        total_stock_value=round(float(states["stock_value"].sum()), 2),
        out_of_stock_count=int((status == StockStatus.OUT_OF_STOCK).sum()),
        low_stock_count=low,
        low_stock_ratio=round(low / n * 100, 2) if n else 0.0,
        urgent_reorder_count=int((selling & (coverage < lead_days)).sum()),
        dead_stock_count=int((status == StockStatus.DEAD_STOCK).sum()),
        rotation_per_year=round(yearly_units / units_in_stock, 2)
        if units_in_stock and history_days
        else None,
        avg_coverage_days=round(float(coverage[selling].median()), 1) if selling.any() else None,
    )


def stock_alerts(states: pd.DataFrame, *, rule: demand.DemandRule) -> list[StockAlert]:
    """One alert per product that is out of stock, below its threshold with something to order, or covers
    less than the lead time; the most money at stake first."""
    alerts = [stock_alert(_keyed(row), rule) for row in alerting(states, rule).to_dict("records")]
    return sorted(alerts, key=lambda a: (-a.at_stake, -SEVERITY_RANK[a.severity], a.product_id))


def alerting(states: pd.DataFrame, rule: demand.DemandRule, *, margin: float = 1.0) -> pd.DataFrame:
    """The states that make a stock alert: out of stock; low stock with an order to place (a low stock
    nobody buys is no alert); coverage under the lead time (× `margin`: what keeps an open alert open)."""
    status, coverage = states["status"], states["coverage_days"]
    urgent = coverage.notna() & (coverage < rule.lead_days * margin)
    low = (status == StockStatus.LOW_STOCK) & (states["suggested_order_qty"] > 0)
    return states[(status == StockStatus.OUT_OF_STOCK) | low | urgent]


def stock_severity(row: dict[str, Any], rule: demand.DemandRule, *, margin: float = 1.0) -> Severity:
    """A stock alert's severity; `margin` > 1 widens the worse bands (hysteresis: an alert drops a level
    only when it is clear of the boundary by that factor)."""
    kind = stock_alert_kind(row)
    if kind == AlertKind.OUT_OF_STOCK:
        return Severity.HIGH if row["daily_demand"] > 0 else Severity.LOW
    if kind == AlertKind.LOW_STOCK:
        threshold = row["min_stock"]
        ratio = row["current_stock"] / threshold if threshold else 0.0
        return (
            Severity.HIGH
            if ratio <= 0.25 * margin
            else Severity.MEDIUM
            if ratio <= 0.5 * margin
            else Severity.LOW
        )
    coverage, lead_days = row["coverage_days"], rule.lead_days
    return (
        Severity.HIGH
        if coverage < lead_days / 3 * margin
        else Severity.MEDIUM
        if coverage < 2 * lead_days / 3 * margin
        else Severity.LOW
    )


def stock_alert_kind(row: dict[str, Any]) -> StockAlertKind:
    if row["status"] == StockStatus.OUT_OF_STOCK:
        return AlertKind.OUT_OF_STOCK
    if row["status"] == StockStatus.LOW_STOCK and row["suggested_order_qty"] > 0:
        return AlertKind.LOW_STOCK
    return AlertKind.URGENT_REORDER


def _stock_report(
    states: pd.DataFrame, period: Period, as_of: date, *, language: str, lead_days: int
) -> StockAnalytics:
    critical = states[states["status"] != StockStatus.OK]
    to_order = states[states["suggested_order_qty"] > 0].sort_values("coverage_days", kind="stable")
    return StockAnalytics(
        period=period,
        period_label=period_label(period, language),
        as_of=as_of,
        kpis=stock_kpis(states, lead_days=lead_days),
        critical_products=_product_rows(critical),
        reorder_suggestions=_product_rows(to_order),
    )


def _product_rows(states: pd.DataFrame) -> list[ProductStock]:
    rows = states.drop(columns=["units_last_year", "history_days"]).to_dict("records")
    return [ProductStock(**_clean(_keyed(row))) for row in rows]


def _keyed(row: dict[Any, Any]) -> dict[str, Any]:
    return {str(name): value for name, value in row.items()}


def _clean(row: dict[str, object]) -> dict[str, object]:
    """Missing values become null; numbers are rounded for people."""
    cleaned: dict[str, object] = {}
    for name, value in row.items():
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
            cleaned[name] = None
        elif name == "last_sale_date":
            cleaned[name] = pd.Timestamp(value).date()  # type: ignore[arg-type]  # datetime64 here
        elif name in ("coverage_days", "daily_demand", "stock_value", "unit_price", "sales_at_risk"):
            cleaned[name] = round(float(value), 2)  # type: ignore[arg-type]  # a number here
        else:
            cleaned[name] = value
    return cleaned


def stock_alert(r: dict[str, Any], rule: demand.DemandRule) -> StockAlert:
    label = f"{r['name']} ({r['sku']})"
    stock, threshold, rate, coverage = (
        r["current_stock"],
        r["min_stock"],
        r["daily_demand"],
        r["coverage_days"],
    )
    order = int(r["suggested_order_qty"])
    lead_days, per_day = rule.lead_days, Formats.rate(rate)
    kind = stock_alert_kind(r)
    if kind == AlertKind.OUT_OF_STOCK:
        message = (
            f"{label} is out of stock, losing about {per_day} units a day; order {order:,} now."
            if rate > 0
            else f"{label} is out of stock; it has no recent demand (order only if you still sell it)."
        )
    elif kind == AlertKind.LOW_STOCK:
        message = (
            f"Only {stock:,} left of {label}, below its threshold of {threshold:,}, at {per_day} units a"
            f" day; order {order:,}."
        )
    else:
        # Just past the lead time, an open alert is kept (hysteresis) and says where it stands.
        against = "less than" if coverage < lead_days else "only just over"
        message = (
            f"{label}: {stock:,} in stock cover {describe_coverage(coverage)} at {per_day} units a day,"
            f" {against} the {lead_days}-day lead time" + (f"; order {order:,} now." if order else ".")
        )
    return StockAlert(
        product_id=int(r["product_id"]),
        message=message,
        severity=stock_severity(r, rule),
        sku=str(r["sku"]),
        name=str(r["name"]),
        kind=kind,
        current_stock=int(stock),
        threshold=int(threshold),
        coverage_days=None if coverage is None or np.isnan(coverage) else round(float(coverage), 2),
        at_stake=round(float(r["sales_at_risk"]), 2),
    )


def describe_coverage(days: float | None) -> str:
    """Coverage for people: "no recent demand", "over a year", or days to one decimal that never round up
    to the boundary they are compared with (6.98 is "6.9 days", never "7.0")."""
    if days is None or np.isnan(days):
        return "no recent demand"
    if days >= OVER_A_YEAR:
        return "over a year"
    return f"{np.floor(days * 10) / 10:.1f} days"


def _history_days(lines: pd.DataFrame, as_of: date) -> int:
    """Days of sales history behind the yearly figures (at most a year)."""
    if lines.empty:
        return 0
    first = pd.Timestamp(lines["day"].iloc[0]).date()
    return min(YEAR_DAYS, (as_of - first).days + 1)
