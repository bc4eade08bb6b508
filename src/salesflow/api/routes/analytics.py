"""Sales and stock analytics (frontend-contract.md calls 1 and 2); any authenticated user may read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from salesflow.api.deps import CurrentUser, SalesAnalyticsDep, StockAnalyticsDep
from salesflow.api.envelope import EnvelopeRoute
from salesflow.models.analytics import Period, SalesAnalytics, SalesQuery, StockAnalytics

router = APIRouter(prefix="/analytics", tags=["analytics"], route_class=EnvelopeRoute)


@router.get("/sales", response_model=SalesAnalytics)
async def get_sales_analytics(
    query: Annotated[SalesQuery, Query()], user: CurrentUser, service: SalesAnalyticsDep
) -> Response:
    """Revenue, units, transactions, top products and a zero-filled daily series for one window."""
    return Response(await service.report_json(query, scope=user.scope), media_type="application/json")


@router.get("/stock", response_model=StockAnalytics)
async def get_stock_analytics(
    user: CurrentUser, service: StockAnalyticsDep, period: Period = Period.DAILY
) -> Response:
    """Stock value, out-of-stock/low/dead counts, coverage and reorder needs as of today."""
    return Response(await service.report_json(period, scope=user.scope), media_type="application/json")
