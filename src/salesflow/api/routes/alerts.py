"""Alerts (UC4, UC9): the list (any signed-in user), acknowledging and checking now (ADMIN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from salesflow.api.deps import AlertsDep, CurrentUser, require_roles
from salesflow.api.envelope import EnvelopeRoute
from salesflow.api.errors import MAX_OFFSET, documented
from salesflow.models.alerts import (
    AlertCheckResult,
    AlertKind,
    AlertNotification,
    AlertOut,
    AlertPage,
    AlertProduct,
    AlertState,
    Severity,
)
from salesflow.services.alerting.pipeline import AlertService
from salesflow.state.alerts import AlertFilters
from salesflow.state.tables import Alert, OutgoingMail

router = APIRouter(prefix="/alerts", tags=["alerts"], route_class=EnvelopeRoute)
ADMIN_ONLY = [Depends(require_roles("ADMIN"))]


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
    alerts, total = await service.page(filters, offset=offset, limit=limit)
    return AlertPage(data=await shaped(alerts, service), total=total, offset=offset, limit=limit)


@router.post("/check", dependencies=ADMIN_ONLY)
async def check_alerts(service: AlertsDep) -> AlertCheckResult:
    """Evaluate the rules now: what opened, changed and resolved (a digest of what opened or worsened is
    queued for e-mail, sent in the background)."""
    checked_at = service.clock()
    changes = await service.check_now()
    return AlertCheckResult(
        checked_at=checked_at,
        opened=await shaped(changes.opened, service),
        updated=await shaped(changes.updated, service),
        resolved=await shaped(changes.resolved, service),
        digest_mail_id=changes.digest_mail_id,
    )


@router.post("/{alert_id}/ack", dependencies=ADMIN_ONLY, responses=documented(404))
async def acknowledge_alert(alert_id: str, user: CurrentUser, service: AlertsDep) -> AlertOut:
    """Open → acknowledged: not e-mailed again unless it gets worse."""
    alert = await service.acknowledge(alert_id, by=user.username)
    [shown] = await shaped([alert], service)
    return shown


async def shaped(alerts: Sequence[Alert], service: AlertService) -> list[AlertOut]:
    mails = await service.alerts.mails({a.mail_id for a in alerts if a.mail_id})
    return [alert_out(a, mails.get(a.mail_id) if a.mail_id else None) for a in alerts]


def alert_out(alert: Alert, mail: OutgoingMail | None) -> AlertOut:
    product = (
        AlertProduct(id=alert.product_id, sku=alert.product_sku or "", name=alert.product_name or "")
        if alert.product_id is not None
        else None
    )
    notification = (
        AlertNotification(
            mail_id=mail.id,
            status=mail.status,
            attempts=mail.attempts,
            last_error=mail.last_error,
            sent_at=mail.sent_at,
        )
        if mail is not None
        else None
    )
    return AlertOut(
        id=alert.id,
        kind=AlertKind(alert.kind),
        subject=alert.subject,
        product=product,
        severity=alert.severity,
        state=AlertState(alert.state),
        message=alert.message,
        at_stake=alert.at_stake,
        numbers=alert.numbers,
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        resolved_at=alert.resolved_at,
        notification=notification,
    )
