"""Demand forecasts and anomaly detection (frontend-contract.md calls 3 and 4); any authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from salesflow.api.deps import AccuracyDep, AnomalyDep, CurrentUser, ForecastDep, limit_expensive
from salesflow.api.envelope import EnvelopeRoute
from salesflow.api.errors import MAX_OFFSET, documented
from salesflow.models.ml import (
    AccuracyResponse,
    AnomalyRequest,
    AnomalyResponse,
    ForecastRequest,
    ForecastResponse,
)

router = APIRouter(prefix="/ml", tags=["ml"], route_class=EnvelopeRoute)


@router.post(
    "/forecast",
    response_model=ForecastResponse,
    responses=documented(404, 429, 502, 503, 504),
    dependencies=[Depends(limit_expensive)],
)
async def post_forecast(request: ForecastRequest, user: CurrentUser, service: ForecastDep) -> Response:
    """Forecast demand (GLOBAL, or a PRODUCT by sku, name or id) with intervals, model and backtest."""
    return Response(await service.forecast_json(request, scope=user.scope), media_type="application/json")


@router.post(
    "/anomalies",
    response_model=AnomalyResponse,
    responses=documented(404, 429, 502, 503, 504),
    dependencies=[Depends(limit_expensive)],
)
async def post_anomalies(request: AnomalyRequest, user: CurrentUser, service: AnomalyDep) -> Response:
    """Unusual days (or weeks) in the sales history, each explained; sends no e-mail."""
    return Response(await service.detect_json(request, scope=user.scope), media_type="application/json")


@router.get(
    "/accuracy",
    response_model=AccuracyResponse,
    responses=documented(429, 502, 503, 504),
    dependencies=[Depends(limit_expensive)],
)
async def get_accuracy(
    user: CurrentUser,
    service: AccuracyDep,
    weeks: Annotated[int, Query(ge=1, le=104)] = 4,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> AccuracyResponse:
    """How good the day's forecasts have been over the last `weeks` weeks (each scored once its 7 days are
    known), for the whole shop and per product (the most sold first), against seasonal naive."""
    return await service.report(weeks=weeks, offset=offset, limit=limit)
