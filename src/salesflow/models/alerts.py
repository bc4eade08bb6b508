"""Alerts (UC4, UC9): what `/api/v1/alerts` and `/api/v1/alerts/check` answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Severity(StrEnum):
    """Lowest first: `SEVERITY_RANK` follows this order."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# Keyed by the values too: the state database's rows hold plain strings.
SEVERITY_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(Severity, start=1)}


class AlertKind(StrEnum):
    SALES_ANOMALY = "SALES_ANOMALY"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    LOW_STOCK = "LOW_STOCK"
    URGENT_REORDER = "URGENT_REORDER"
    DEAD_STOCK = "DEAD_STOCK"


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class MailStatus(StrEnum):
    """An outbox message's life: claimed by one sender at a time, retried until sent or given up."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class AlertProduct(BaseModel):
    id: int
    sku: str
    name: str


class AlertNotification(BaseModel):
    """The e-mail that told about this alert's latest change (the digest it was in)."""

    mail_id: str
    status: MailStatus
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class AlertOut(BaseModel):
    id: str
    kind: AlertKind
    subject: str = Field(description='"global" or "product:<id>"')
    product: AlertProduct | None
    severity: Severity
    state: AlertState
    message: str
    at_stake: float = Field(
        description="money at stake: sales at risk (stock kinds), value tied up (dead stock), the day's"
        " revenue gap (sales anomaly); lists are ranked by it"
    )
    numbers: dict[str, float | int | str | None] = Field(
        description="What triggered it: observed, expected, threshold, coverage_days, …"
    )
    first_seen: datetime
    last_seen: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    notification: AlertNotification | None


class AlertPage(BaseModel):
    data: list[AlertOut]
    total: int
    offset: int
    limit: int


class AlertCheckResult(BaseModel):
    checked_at: datetime
    opened: list[AlertOut]
    updated: list[AlertOut]
    resolved: list[AlertOut]
    digest_mail_id: str | None = Field(description="The digest e-mail queued for what opened or worsened")


@dataclass(frozen=True)
class AlertFilters:
    """Which alerts a page lists, and in which order."""

    state: str | None = None
    kind: str | None = None
    severity: str | None = None
    product_id: int | None = None
    order: str = "stake"  # "stake": the most money at stake first; "recent": the most recently seen first
