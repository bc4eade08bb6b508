"""Wire models of the analytics routes (frontend-contract.md calls 1 and 2, and the legacy stock alerts).

Field names are the contract's; keys it does not list are additions the frontend ignores.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from salesflow.models.alerts import AlertKind, Severity


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class SalesQuery(BaseModel):
    """`GET /analytics/sales` query: a period, or an explicit window (both dates, inclusive)."""

    period: Period = Period.DAILY
    start_date: date | None = None
    end_date: date | None = None


class TopProduct(BaseModel):
    product_id: int
    sku: str | None
    name: str
    total_quantity: int
    revenue: float
    share_of_revenue: float


class SalesKpis(BaseModel):
    total_revenue: float
    total_quantity: int
    total_transactions: int
    average_ticket: float
    top_products: list[TopProduct]
    seasonal_hint: str | None


class DailySales(BaseModel):
    date: date
    total_revenue: float
    total_quantity: int
    total_transactions: int


class KpiChange(BaseModel):
    """Change in percent against the previous window; null when the previous value is zero."""

    total_revenue: float | None
    total_quantity: float | None
    total_transactions: float | None
    average_ticket: float | None


class Comparison(BaseModel):
    start_date: date
    end_date: date
    total_revenue: float
    total_quantity: int
    total_transactions: int
    average_ticket: float
    change_pct: KpiChange


class CategorySales(BaseModel):
    category: str
    total_revenue: float
    total_quantity: int
    share_of_revenue: float


class SalesAnalytics(BaseModel):
    period: Period
    start_date: date
    end_date: date
    period_label: str
    kpis: SalesKpis
    daily: list[DailySales]
    comparison: Comparison
    by_category: list[CategorySales] | None


class StockStatus(StrEnum):
    """The first that applies, in this order (frontend-contract.md call 2), else `OK`."""

    OUT_OF_STOCK = "OUT_OF_STOCK"
    LOW_STOCK = "LOW_STOCK"
    DEAD_STOCK = "DEAD_STOCK"
    OK = "OK"


AbcClass = Literal["A", "B", "C"]


class StockKpis(BaseModel):
    total_stock_value: float
    out_of_stock_count: int
    low_stock_count: int
    low_stock_ratio: float
    urgent_reorder_count: int
    dead_stock_count: int
    rotation_per_year: float | None
    avg_coverage_days: float | None


class ProductStock(BaseModel):
    product_id: int
    sku: str
    name: str
    status: StockStatus
    current_stock: int
    min_stock: int
    unit_price: float
    stock_value: float
    last_sale_date: date | None
    coverage_days: float | None = Field(
        description="stock ÷ daily demand; null without recent demand; capped at 366 (over a year)"
    )
    daily_demand: float
    demand_source: Literal["rate", "forecast"]
    reorder_point: int
    suggested_order_qty: int
    abc_class: AbcClass
    sales_at_risk: float = Field(
        description="sales (money) lost before stock ordered at the next review could arrive: "
        "max(daily demand × (lead + review days) − stock, 0) × price"
    )


class StockAnalytics(BaseModel):
    period: Period
    period_label: str
    as_of: date
    kpis: StockKpis
    critical_products: list[ProductStock]
    reorder_suggestions: list[ProductStock]


# The alert kinds stock analytics raises (the alerts pipeline adds the others).
StockAlertKind = Literal[AlertKind.OUT_OF_STOCK, AlertKind.LOW_STOCK, AlertKind.URGENT_REORDER]


class StockAlert(BaseModel):
    product_id: int
    message: str
    severity: Severity
    sku: str
    name: str
    kind: StockAlertKind
    current_stock: int
    threshold: int
    coverage_days: float | None
    at_stake: float = Field(description="the money at stake (sales at risk), by which alerts are ranked")


class StockAlerts(BaseModel):
    status: Literal["ok"] = "ok"
    mode: Literal["dev", "prod"]
    as_of: date
    alerts: list[StockAlert]
