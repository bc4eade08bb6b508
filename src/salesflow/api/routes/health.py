"""Liveness and readiness; public on purpose (orchestrators call them) and free of internal details."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from salesflow import __version__
from salesflow.api.deps import ResourcesDep
from salesflow.api.envelope import EnvelopeRoute
from salesflow.models.health import Liveness, Readiness
from salesflow.services import health as health_service

SERVICE_NAME = "salesflow-analytics"

router = APIRouter(prefix="/health", tags=["health"], route_class=EnvelopeRoute)


@router.get("")
async def liveness() -> Liveness:
    """The process is up; touches no dependency."""
    return Liveness(service=SERVICE_NAME, version=__version__)


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def readiness(resources: ResourcesDep) -> JSONResponse:
    """Each dependency's state; 503 when the service cannot serve requests."""
    result = await health_service.readiness(resources.readiness_checks())
    return JSONResponse(result.model_dump(), status_code=200 if result.status == "ready" else 503)
