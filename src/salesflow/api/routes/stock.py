"""Legacy stock alerts (`GET /stock/alerts`), kept for older frontend builds."""

from __future__ import annotations

from fastapi import APIRouter, Response

from salesflow.api.deps import CurrentUser, StockAnalyticsDep
from salesflow.api.envelope import EnvelopeRoute
from salesflow.models.analytics import StockAlerts

router = APIRouter(prefix="/stock", tags=["stock"], route_class=EnvelopeRoute)


@router.get("/alerts", response_model=StockAlerts)
async def get_stock_alerts(user: CurrentUser, service: StockAnalyticsDep) -> Response:
    """Out-of-stock, low-stock and urgent-reorder alerts, each message stating the numbers behind it."""
    return Response(await service.alerts_json(scope=user.scope), media_type="application/json")
