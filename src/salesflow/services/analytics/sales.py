"""Sales analytics pipeline (UC2): window → load → KPIs, top products, daily, comparison → shape → cache.

Stages, in order:
1. `resolve_window` (windows.py): the period or dates become inclusive business days.
2. load: the lines of the window and of the previous window of equal length, in one read of the line cache,
   and the products (for current names and categories).
3. compute (pure, vectorised): `kpis`, `top_products`, `daily_series`, `by_category`, `seasonal_hint`.
4. shape: the contract's model, serialised once and cached per (scope, period, window).
"""

from __future__ import annotations

from datetime import date

import anyio
import numpy as np
import pandas as pd

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines import SaleLineCache, days_between
from salesflow.models.analytics import (
    CategorySales,
    Comparison,
    DailySales,
    KpiChange,
    SalesAnalytics,
    SalesKpis,
    SalesQuery,
    TopProduct,
)
from salesflow.models.cache import CachePipeline
from salesflow.services.analytics.windows import Window, resolve_window

TOP_PRODUCTS = 5
_WEEKDAYS = {
    "en": ["Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"],
    "fr": ["Le lundi", "Le mardi", "Le mercredi", "Le jeudi", "Le vendredi", "Le samedi", "Le dimanche"],
}


class SalesAnalyticsService:
    """`GET /analytics/sales`."""

    def __init__(
        self,
        lines: SaleLineCache,
        cache: Cache,
        *,
        ttl_seconds: int,
        max_window_days: int,
        language: str = "en",
    ) -> None:
        self.lines = lines
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.max_window_days = max_window_days
        self.language = language

    async def report_json(self, query: SalesQuery, *, scope: str) -> bytes:
        """The analytics of the query's window as JSON bytes (cached)."""
        window = resolve_window(
            query, today=self.lines.today(), max_days=self.max_window_days, language=self.language
        )
        key = cache_key(
            CachePipeline.ANALYTICS,
            scope,
            kind="sales",
            period=query.period,
            first=window.first,
            last=window.last,
        )

        async def compute() -> bytes:
            report = await self.report(query, window)
            return report.model_dump_json().encode()

        return await self.cache.get_or_compute(key, self.ttl_seconds, compute, encode=bytes, decode=bytes)

    async def report(self, query: SalesQuery, window: Window) -> SalesAnalytics:
        """Compute the analytics of `window` (uncached)."""
        previous = window.previous()
        lines = await self.lines.window(previous.first, window.last)
        products = await self.lines.products()
        return await anyio.to_thread.run_sync(self._compute, query, window, previous, lines, products)

    def _compute(
        self, query: SalesQuery, window: Window, previous: Window, lines: pd.DataFrame, products: pd.DataFrame
    ) -> SalesAnalytics:
        current = days_between(lines, window.first, window.last)
        before = days_between(lines, previous.first, previous.last)
        now, then = kpis(current), kpis(before)
        daily = daily_series(current, window.first, window.last)
        return SalesAnalytics(
            period=query.period,
            start_date=window.first,
            end_date=window.last,
            period_label=window.label,
            kpis=SalesKpis(
                **now,
                top_products=top_products(current, products, total_revenue=now["total_revenue"]),
                seasonal_hint=seasonal_hint(daily, now, then, window, language=self.language),
            ),
            daily=[
                DailySales(date=d, total_revenue=r, total_quantity=q, total_transactions=t)
                for d, r, q, t in zip(
                    daily["date"],
                    daily["total_revenue"].tolist(),
                    daily["total_quantity"].tolist(),
                    daily["total_transactions"].tolist(),
                    strict=True,
                )
            ],
            comparison=Comparison(
                start_date=previous.first,
                end_date=previous.last,
                **then,
                change_pct=KpiChange(
                    total_revenue=percent_change(now["total_revenue"], then["total_revenue"]),
                    total_quantity=percent_change(now["total_quantity"], then["total_quantity"]),
                    total_transactions=percent_change(now["total_transactions"], then["total_transactions"]),
                    average_ticket=percent_change(now["average_ticket"], then["average_ticket"]),
                ),
            ),
            by_category=by_category(current, products, total_revenue=now["total_revenue"]),
        )


def kpis(lines: pd.DataFrame) -> dict[str, float]:
    """Revenue (Σ line subtotals), units, distinct sales and the average ticket."""
    revenue = float(lines["subtotal"].sum())
    transactions = int(lines["sale_id"].nunique())
    return {
        "total_revenue": round(revenue, 2),
        "total_quantity": int(lines["quantity"].sum()),
        "total_transactions": transactions,
        "average_ticket": round(revenue / transactions, 2) if transactions else 0.0,
    }


def top_products(
    lines: pd.DataFrame, products: pd.DataFrame, *, total_revenue: float, limit: int = TOP_PRODUCTS
) -> list[TopProduct]:
    """The best sellers by revenue; ties broken by product id. Names are the catalogue's current ones."""
    if lines.empty:
        return []
    totals = lines.groupby("product_id", sort=True).agg(
        revenue=("subtotal", "sum"),
        total_quantity=("quantity", "sum"),
        sold_as=("name", "last"),
        sku=("sku", "last"),
    )
    best = totals.sort_values("revenue", ascending=False, kind="stable").head(limit)
    names = products.set_index("product_id")["name"]
    return [
        TopProduct(
            product_id=int(product_id),
            sku=None if pd.isna(sku) else str(sku),
            name=str(names.get(product_id, sold_as)),
            total_quantity=int(quantity),
            revenue=round(float(revenue), 2),
            share_of_revenue=_share(float(revenue), total_revenue),
        )
        for product_id, revenue, quantity, sold_as, sku in zip(
            best.index.tolist(),
            best["revenue"].tolist(),
            best["total_quantity"].tolist(),
            best["sold_as"].tolist(),
            best["sku"].tolist(),
            strict=True,
        )
    ]


def daily_series(lines: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """One row for every day `first..last`, zeros included."""
    days = pd.date_range(first, last, freq="D").astype("datetime64[s]")
    grouped = lines.groupby("day", sort=True)
    daily = pd.DataFrame(
        {
            "total_revenue": grouped["subtotal"].sum(),
            "total_quantity": grouped["quantity"].sum(),
            "total_transactions": grouped["sale_id"].nunique(),
        }
    ).reindex(days, fill_value=0)
    return pd.DataFrame(
        {
            "date": pd.DatetimeIndex(days).date,
            "total_revenue": daily["total_revenue"].to_numpy(dtype=np.float64).round(2),
            "total_quantity": daily["total_quantity"].to_numpy(dtype=np.int64),
            "total_transactions": daily["total_transactions"].to_numpy(dtype=np.int64),
        }
    )


def by_category(
    lines: pd.DataFrame, products: pd.DataFrame, *, total_revenue: float
) -> list[CategorySales] | None:
    """Revenue per category, when the catalogue knows categories; unknown ones are grouped as "Other"."""
    categories = products.set_index("product_id")["category"]
    if categories.isna().all():
        return None
    category = lines["product_id"].map(categories).fillna("Other")
    grouped = lines.groupby(category.to_numpy(), sort=True).agg(
        total_revenue=("subtotal", "sum"), total_quantity=("quantity", "sum")
    )
    grouped = grouped.sort_values("total_revenue", ascending=False, kind="stable")
    return [
        CategorySales(
            category=str(name),
            total_revenue=round(float(revenue), 2),
            total_quantity=int(quantity),
            share_of_revenue=_share(float(revenue), total_revenue),
        )
        for name, revenue, quantity in zip(
            grouped.index.tolist(),
            grouped["total_revenue"].tolist(),
            grouped["total_quantity"].tolist(),
            strict=True,
        )
    ]


def seasonal_hint(
    daily: pd.DataFrame,
    now: dict[str, float],
    then: dict[str, float],
    window: Window,
    *,
    language: str = "en",
) -> str | None:
    """A short true sentence: the strongest weekday (windows of two weeks or more), else the trend."""
    if window.days >= 14 and (daily["total_revenue"] > 0).sum() >= 7:
        by_weekday = daily.groupby(pd.to_datetime(daily["date"]).dt.day_of_week)["total_revenue"].mean()
        mean = float(daily["total_revenue"].mean())
        best = int(np.argmax(by_weekday.to_numpy()))
        best_day = int(by_weekday.index.to_numpy()[best])
        lift = (float(by_weekday.iloc[best]) / mean - 1) * 100 if mean else 0.0
        if lift >= 10:
            weekday = _WEEKDAYS[language][best_day]
            if language == "fr":
                return f"{weekday} est le jour le plus fort : ventes {lift:.0f} % au-dessus de la moyenne."
            return f"{weekday} are the strongest day: revenue {lift:.0f}% above the daily average."
    change = percent_change(now["total_revenue"], then["total_revenue"])
    if change is None:
        return None
    span = f"{window.days} day" + ("s" if window.days > 1 else "")
    if language == "fr":
        trend = "en hausse" if change >= 5 else "en baisse" if change <= -5 else "stable"
        return f"Chiffre d’affaires {trend} ({change:+.0f} %) par rapport aux {window.days} jours précédents."
    trend = "up" if change >= 5 else "down" if change <= -5 else "stable"
    return f"Revenue is {trend} ({change:+.0f}%) on the previous {span}."


def percent_change(current: float, previous: float) -> float | None:
    """Change in percent, or None when there is nothing to compare with."""
    if not previous:
        return None
    return round((current - previous) / previous * 100, 2)


def _share(part: float, total: float) -> float:
    return round(part / total * 100, 2) if total else 0.0
