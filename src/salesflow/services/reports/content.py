"""Gather stage: what a report shows, read from the very services (and caches) the routes answer from, so that
every number equals what `/analytics/*` and `/ml/*` answer for the same window."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

import orjson

from salesflow.models.analytics import SalesAnalytics, SalesQuery, StockAnalytics
from salesflow.models.ml import (
    AnomalyRequest,
    AnomalyResponse,
    Bucket,
    ForecastRequest,
    ForecastResponse,
    Scope,
)
from salesflow.models.reports import ReportType
from salesflow.services.analytics.sales import SalesAnalyticsService
from salesflow.services.analytics.stock import StockAnalyticsService
from salesflow.services.ml.anomalies import AnomalyService
from salesflow.services.ml.forecasting import ForecastService

FORECAST_DAYS = 30
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class ReportContent:
    report_type: ReportType
    title: str
    period_label: str
    generated_at: datetime  # in BUSINESS_TZ
    sales: SalesAnalytics | None = None
    stock: StockAnalytics | None = None
    forecast: ForecastResponse | None = None
    anomalies: AnomalyResponse | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def revenue_by_weekday(self) -> list[tuple[str, float]]:
        """The window's revenue per weekday, from its daily series."""
        totals: dict[int, float] = defaultdict(float)
        for day in self.sales.daily if self.sales else []:
            totals[day.date.weekday()] += day.total_revenue
        return [(WEEKDAYS[k], round(totals[k], 2)) for k in range(7)]

    @property
    def window(self) -> tuple[date, date] | None:
        return (self.sales.start_date, self.sales.end_date) if self.sales else None


class ReportGatherer:
    """Reads a report's sections from the analytics and ML services."""

    def __init__(
        self,
        sales: SalesAnalyticsService,
        stock: StockAnalyticsService,
        forecasts: ForecastService,
        anomalies: AnomalyService,
    ) -> None:
        self.sales = sales
        self.stock = stock
        self.forecasts = forecasts
        self.anomalies = anomalies

    async def gather(
        self, report_type: ReportType, query: SalesQuery, *, scope: str, generated_at: datetime
    ) -> ReportContent:
        sales = stock = forecast = anomalies = None
        if report_type in (ReportType.SALES, ReportType.COMBINED):
            sales = SalesAnalytics.model_validate(
                orjson.loads(await self.sales.report_json(query, scope=scope))
            )
        if report_type in (ReportType.STOCK, ReportType.COMBINED):
            stock = StockAnalytics.model_validate(
                orjson.loads(await self.stock.report_json(query.period, scope=scope))
            )
        if report_type == ReportType.COMBINED:
            request = ForecastRequest(scope=Scope.GLOBAL, forecast_days=FORECAST_DAYS, period=Bucket.DAILY)
            forecast = ForecastResponse.model_validate(
                orjson.loads(await self.forecasts.forecast_json(request, scope=scope))
            )
            found = AnomalyResponse.model_validate(
                orjson.loads(
                    await self.anomalies.detect_json(AnomalyRequest(scope=Scope.GLOBAL), scope=scope)
                )
            )
            if sales is not None:  # the anomalies of the report's window only
                inside = [a for a in found.anomalies if sales.start_date <= a.date <= sales.end_date]
                found = found.model_copy(update={"anomalies": inside, "count": len(inside)})
            anomalies = found
        label = sales.period_label if sales else stock.period_label if stock else ""
        titles = {
            ReportType.SALES: "Sales report",
            ReportType.STOCK: "Stock report",
            ReportType.COMBINED: "Sales, stock and outlook",
        }
        return ReportContent(
            report_type=report_type,
            title=titles[report_type],
            period_label=label,
            generated_at=generated_at,
            sales=sales,
            stock=stock,
            forecast=forecast,
            anomalies=anomalies,
        )
