"""Alerts (UC4, UC9): the list (any signed-in user), acknowledging and checking now (ADMIN)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from salesflow.api.deps import AlertsDep, CurrentUser, require_roles
from salesflow.api.envelope import EnvelopeRoute
from salesflow.api.errors import MAX_OFFSET, documented
from salesflow.models.alerts import (
    AlertCheckResult,
    AlertFilters,
    AlertKind,
    AlertOut,
    AlertPage,
    AlertState,
    Severity,
)
from salesflow.models.auth import Role

router = APIRouter(prefix="/alerts", tags=["alerts"], route_class=EnvelopeRoute)
ADMIN_ONLY = [Depends(require_roles(Role.ADMIN))]


@router.get("")
async def list_alerts(
    user: CurrentUser,
    service: AlertsDep,
    state: AlertState | None = None,
    kind: AlertKind | None = None,
    severity: Severity | None = None,
    product: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="a product id")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    order: Annotated[
        Literal["stake", "recent"],
        Query(description="stake: the most money at stake first (default); recent: most recently seen first"),
    ] = "stake",
) -> AlertPage:
    """Alerts, the most money at stake first, with the e-mail that told of each."""
    filters = AlertFilters(state=state, kind=kind, severity=severity, product_id=product, order=order)
    return await service.page(filters, offset=offset, limit=limit)


@router.post("/check", dependencies=ADMIN_ONLY)
async def check_alerts(service: AlertsDep) -> AlertCheckResult:
    """Evaluate the rules now: what opened, changed and resolved (a digest of what opened or worsened is
    queued for e-mail, sent in the background)."""
    checked_at = service.clock()
    changes = await service.check_now()
    return AlertCheckResult(
        checked_at=checked_at,
        opened=await service.shaped(changes.opened),
        updated=await service.shaped(changes.updated),
        resolved=await service.shaped(changes.resolved),
        digest_mail_id=changes.digest_mail_id,
    )


@router.post("/{alert_id}/ack", dependencies=ADMIN_ONLY, responses=documented(404))
async def acknowledge_alert(alert_id: str, user: CurrentUser, service: AlertsDep) -> AlertOut:
    """Open → acknowledged: not e-mailed again unless it gets worse."""
    alert = await service.acknowledge(alert_id, by=user.username)
    [shown] = await service.shaped([alert])
    return shown
