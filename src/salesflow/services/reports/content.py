"""Gather stage: what a report shows, read from the very services (and caches) the routes answer from, so that
every number equals what `/analytics/*` and `/ml/*` answer for the same window."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import orjson

from salesflow.errors import InvalidInput
from salesflow.formatting import Formats
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
from salesflow.models.weekdays import WEEKDAY_NAMES
from salesflow.services.analytics.sales import SalesAnalyticsService, percent_change
from salesflow.services.analytics.stock import StockAnalyticsService
from salesflow.services.ml.accuracy import ForecastAccuracy
from salesflow.services.ml.anomalies import AnomalyService
from salesflow.services.ml.forecasting import ForecastService

FORECAST_DAYS = 30
ACCURACY_WEEKS = 4  # how far back the combined report's line on forecast accuracy looks
HISTORY_GRACE_DAYS = 7  # a year-before window whose first sale comes later than this is partial history


@dataclass(frozen=True)
class ReportContent:
    report_type: ReportType
    title: str
    period_label: str  # what the window is ("Last 7 days", "Thursday 2026-12-03", "as of 2026-12-04")
    generated_at: datetime  # in BUSINESS_TZ
    formats: Formats = field(default_factory=Formats)
    sales: SalesAnalytics | None = None
    last_year: SalesAnalytics | None = None  # the same days a year (52 weeks) before, when history has them
    stock: StockAnalytics | None = None
    forecast: ForecastResponse | None = None
    anomalies: AnomalyResponse | None = None
    accuracy: str | None = None  # how good the forecasts have been lately, in one line
    notes: list[str] = field(default_factory=list)

    @property
    def revenue_by_weekday(self) -> list[tuple[str, float]]:
        """The window's revenue per weekday, from its daily series."""
        totals: dict[int, float] = defaultdict(float)
        for day in self.sales.daily if self.sales else []:
            totals[day.date.weekday()] += day.total_revenue
        return [(WEEKDAY_NAMES[k], round(totals[k], 2)) for k in range(7)]

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
        accuracy: ForecastAccuracy,
        *,
        formats: Formats,
    ) -> None:
        self.sales = sales
        self.stock = stock
        self.forecasts = forecasts
        self.accuracy = accuracy
        self.anomalies = anomalies
        self.formats = formats

    async def sales_of(self, query: SalesQuery, *, scope: str) -> SalesAnalytics:
        return SalesAnalytics.model_validate(orjson.loads(await self.sales.report_json(query, scope=scope)))

    async def _last_year(self, sales: SalesAnalytics, *, scope: str) -> SalesAnalytics | None:
        """The same weekdays 52 weeks before; None when that year has no sales (no history to compare)."""
        query = SalesQuery(
            start_date=sales.start_date - timedelta(weeks=52), end_date=sales.end_date - timedelta(weeks=52)
        )
        try:
            found = await self.sales_of(query, scope=scope)
        except InvalidInput:  # beyond what the service keeps
            return None
        # History that begins inside that window (a shop's first weeks) is no year to compare with.
        selling = [d.date for d in found.daily if d.total_transactions]
        if not selling or (selling[0] - found.start_date).days >= HISTORY_GRACE_DAYS:
            return None
        return found

    async def gather(
        self, report_type: ReportType, query: SalesQuery, *, scope: str, generated_at: datetime
    ) -> ReportContent:
        sales = last_year = stock = forecast = anomalies = accuracy = None
        if report_type in (ReportType.SALES, ReportType.COMBINED):
            sales = await self.sales_of(query, scope=scope)
            last_year = await self._last_year(sales, scope=scope)
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
            accuracy = await self.accuracy.summary(ACCURACY_WEEKS)
        label = sales.period_label if sales else f"as of {stock.as_of.isoformat()}" if stock else ""
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
            formats=self.formats,
            sales=sales,
            last_year=last_year,
            stock=stock,
            forecast=forecast,
            anomalies=anomalies,
            accuracy=accuracy,
        )


def highlights(content: ReportContent) -> list[str]:
    """The few lines a manager reads first (the PDF's summary, a scheduled e-mail's body)."""
    money, units = content.formats.money, content.formats.units
    lines: list[str] = []
    if content.sales is not None:
        k = content.sales.kpis
        if not k.total_transactions:
            lines.append(f"No sales in {content.period_label.lower()}.")
        else:
            changes = [_change(content.sales.comparison.change_pct.total_revenue, previous_label(content))]
            if content.last_year is not None:
                changes.append(
                    _change(
                        percent_change(k.total_revenue, content.last_year.kpis.total_revenue), "a year ago"
                    )
                )
            shown = ", ".join(c for c in changes if c)
            lines.append(f"Revenue {money(k.total_revenue)}" + (f" ({shown})" if shown else "") + ".")
            lines.append(
                f"{units(k.total_quantity)} units in {units(k.total_transactions)} sales,"
                f" {money(k.average_ticket)} a sale on average."
            )
            if k.top_products:
                best = k.top_products[0]
                lines.append(
                    f"Best seller: {best.name} ({money(best.revenue)}, {best.share_of_revenue:.1f}%)."
                )
    if content.stock is not None:
        s = content.stock
        to_order = [p for p in s.reorder_suggestions if p.suggested_order_qty > 0]
        value = sum(p.suggested_order_qty * p.unit_price for p in to_order)
        lines.append(
            f"Stock worth {money(s.kpis.total_stock_value)} as of {s.as_of.isoformat()};"
            f" {units(s.kpis.out_of_stock_count)} products out of stock;"
            f" {units(len(to_order))} to reorder now ({money(value)} at current prices)."
        )
    if content.forecast is not None:
        f = content.forecast
        revenue = f" ({money(sum(f.revenue))})" if f.revenue is not None else ""
        outlook = f"about {units(f.summary.total)} units{revenue}"
        lines.append(f"Next {len(f.dates)} days: {outlook}, trend {f.summary.trend}.")
    if content.accuracy is not None:
        lines.append(content.accuracy)
    if content.anomalies is not None:
        count = len(content.anomalies.anomalies)
        lines.append(
            f"{count} unusual day{'s' if count != 1 else ''} in this period." if count else "No unusual day."
        )
    return lines


def previous_label(content: ReportContent) -> str:
    """The comparison window in words: "the day before", "the previous 7 days"."""
    window = content.window
    days = (window[1] - window[0]).days + 1 if window else 0
    return "the day before" if days == 1 else f"the previous {days} days"


def _change(pct: float | None, against: str) -> str:
    return "" if pct is None else f"{pct:+.1f}% on {against}"
