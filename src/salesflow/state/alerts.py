"""Alerts in the state database: one evaluation's conditions reconciled with what is open, and the digest
of what opened or worsened claimed together with its e-mail, in one transaction.

Evaluations are serialised: by a lock in this process and, on PostgreSQL, a transaction-level advisory
lock across processes; the partial unique index (one unresolved alert per kind and subject) holds
regardless. The digest's claim and its outbox row commit together: a change is e-mailed exactly once, and
an evaluation that dies before committing leaves it to the next one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.clients.mail.notifier import Mail
from salesflow.models.alerts import SEVERITY_RANK, AlertFilters, AlertState
from salesflow.state.database import StateDatabase
from salesflow.state.outbox import Outbox
from salesflow.state.tables import Alert, AlertCheck, OutgoingMail

_EVALUATION_LOCK = 7_271_829  # PostgreSQL advisory lock key held while reconciling


@dataclass(frozen=True)
class Condition:
    """What one evaluation found wrong with one subject."""

    kind: str
    subject: str  # "global" | "product:<id>"
    severity: str
    message: str
    numbers: dict[str, Any]
    product_id: int | None = None
    product_sku: str | None = None
    product_name: str | None = None
    at_stake: float = 0.0  # money, by which alerts are ranked
    sticky_severity: str | None = None  # what an open alert keeps while near its boundary (hysteresis)
    hold_only: bool = False  # keeps an unresolved alert open; opens none


@dataclass
class Changes:
    opened: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    digest_mail_id: str | None = None


@dataclass(frozen=True)
class Digest:
    """The e-mail an evaluation queues, and the alerts it tells of (recorded as mailed with it)."""

    alerts: Sequence[Alert]
    mail: Mail
    dedupe_key: str


# (open alerts never mailed at their severity, every unresolved alert) → the digest to queue, if any
DigestPlanner = Callable[[Sequence[Alert], Sequence[Alert]], Digest | None]


class Alerts:
    def __init__(self, db: StateDatabase, outbox: Outbox, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self._lock = asyncio.Lock()

    async def reconcile(
        self,
        conditions: Sequence[Condition],
        *,
        kinds: Collection[str],
        digest: DigestPlanner,
        notify_from: Mapping[Any, str],
    ) -> Changes:
        """Open, update and resolve alerts of `kinds` so that they match `conditions`, then queue the digest
        `digest` plans (None: nothing to send) from the open alerts whose severity was never e-mailed, for
        kinds at or above their `notify_from` severity."""
        now = self.clock()
        changes = Changes()
        async with self._lock, self.db.session() as session, session.begin():
            if self.db.dialect == "postgresql":
                await session.execute(text(f"SELECT pg_advisory_xact_lock({_EVALUATION_LOCK})"))
            current = {
                (alert.kind, alert.subject): alert
                for alert in await session.scalars(
                    select(Alert).where(Alert.kind.in_(list(kinds)), Alert.state != AlertState.RESOLVED)
                )
            }
            for condition in conditions:
                alert = current.pop((condition.kind, condition.subject), None)
                if alert is None and condition.hold_only:
                    continue
                if alert is None:
                    alert = _new_alert(condition, now)
                    session.add(alert)
                    changes.opened.append(alert)
                elif _apply(alert, condition, now):
                    changes.updated.append(alert)
            for alert in current.values():
                alert.state, alert.resolved_at = AlertState.RESOLVED, now
                changes.resolved.append(alert)
            await session.flush()
            changes.digest_mail_id = await self._queue_digest(session, digest, notify_from)
        return changes

    async def _queue_digest(
        self, session: AsyncSession, digest: DigestPlanner, notify_from: Mapping[Any, str]
    ) -> str | None:
        unresolved = list(
            await session.scalars(
                select(Alert).where(Alert.state != AlertState.RESOLVED).order_by(Alert.first_seen, Alert.id)
            )
        )
        unnotified = [
            alert
            for alert in unresolved
            if alert.state == AlertState.OPEN
            and SEVERITY_RANK[alert.severity] > SEVERITY_RANK.get(alert.notified_severity or "", 0)
            and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[notify_from.get(alert.kind, "low")]
        ]
        plan = digest(unnotified, unresolved)
        if plan is None:
            return None
        taken = select(OutgoingMail.id).where(OutgoingMail.dedupe_key == plan.dedupe_key)
        if await session.scalar(taken) is not None:  # another process queued this digest: told once
            return None
        row = self.outbox.row(plan.mail, dedupe_key=plan.dedupe_key)
        session.add(row)
        for alert in plan.alerts:
            alert.notified_severity, alert.mail_id = alert.severity, row.id
        return row.id

    async def acknowledge(self, alert_id: str, *, by: str) -> Alert | None:
        """Open → acknowledged (an acknowledged alert stays so; a resolved one is returned unchanged)."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.state == AlertState.OPEN)
                .values(
                    state=AlertState.ACKNOWLEDGED,
                    acknowledged_at=self.clock(),
                    acknowledged_by=by,
                    acknowledged_severity=Alert.severity,
                )
                .execution_options(synchronize_session=False)
            )
        return await self.get(alert_id)

    async def get(self, alert_id: str) -> Alert | None:
        async with self.db.session() as session:
            return await session.get(Alert, alert_id)

    async def page(self, filters: AlertFilters, *, offset: int, limit: int) -> tuple[Sequence[Alert], int]:
        query = select(Alert)
        if filters.state is not None:
            query = query.where(Alert.state == filters.state)
        if filters.kind is not None:
            query = query.where(Alert.kind == filters.kind)
        if filters.severity is not None:
            query = query.where(Alert.severity == filters.severity)
        if filters.product_id is not None:
            query = query.where(Alert.product_id == filters.product_id)
        async with self.db.session() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            ordering = (Alert.at_stake.desc(),) if filters.order == "stake" else ()
            rows = await session.scalars(
                query.order_by(*ordering, Alert.last_seen.desc(), Alert.id).offset(offset).limit(limit)
            )
            return list(rows), int(total or 0)

    async def mails(self, mail_ids: Collection[str]) -> dict[str, OutgoingMail]:
        if not mail_ids:
            return {}
        async with self.db.session() as session:
            rows = await session.scalars(select(OutgoingMail).where(OutgoingMail.id.in_(list(mail_ids))))
            return {row.id: row for row in rows}

    async def start_check(self, *, trigger: str, slot: datetime | None = None) -> str | None:
        """Record an evaluation; None when the scheduled `slot` was already taken (by another process)."""
        check = AlertCheck(
            id=uuid.uuid4().hex,
            slot=slot,
            trigger=trigger,
            started_at=self.clock(),
            opened=0,
            updated=0,
            resolved=0,
        )
        try:
            async with self.db.session() as session, session.begin():
                session.add(check)
        except IntegrityError:
            return None
        return check.id

    async def finish_check(self, check_id: str, changes: Changes | None, *, error: str | None = None) -> None:
        values: dict[str, Any] = {"finished_at": self.clock(), "error": error}
        if changes is not None:
            values |= {
                "opened": len(changes.opened),
                "updated": len(changes.updated),
                "resolved": len(changes.resolved),
            }
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(AlertCheck)
                .where(AlertCheck.id == check_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def last_check(self) -> AlertCheck | None:
        async with self.db.session() as session:
            return await session.scalar(select(AlertCheck).order_by(AlertCheck.started_at.desc()).limit(1))


def _new_alert(condition: Condition, now: datetime) -> Alert:
    return Alert(
        id=uuid.uuid4().hex,
        kind=condition.kind,
        subject=condition.subject,
        product_id=condition.product_id,
        product_sku=condition.product_sku,
        product_name=condition.product_name,
        severity=condition.severity,
        state=AlertState.OPEN,
        message=condition.message,
        numbers=condition.numbers,
        at_stake=condition.at_stake,
        first_seen=now,
        last_seen=now,
    )


def _apply(alert: Alert, condition: Condition, now: datetime) -> bool:
    """Bring an unresolved alert up to date; True when what it says changed (not only when it was seen).
    It eases a level only once clear of the widened band (`sticky_severity`); worse than the severity it
    was acknowledged at, it opens again, so that it is e-mailed and looked at."""
    previous = alert.severity
    severity = _eased(previous, condition)
    changed = severity != previous or condition.numbers != alert.numbers
    alert.last_seen = now
    alert.severity, alert.message, alert.numbers = severity, condition.message, condition.numbers
    alert.product_sku, alert.product_name = condition.product_sku, condition.product_name
    alert.at_stake = condition.at_stake
    acknowledged_at = SEVERITY_RANK[alert.acknowledged_severity or previous]
    if alert.state == AlertState.ACKNOWLEDGED and SEVERITY_RANK[severity] > acknowledged_at:
        alert.state = AlertState.OPEN
        # E-mailed at its new severity, even one reached (and mailed) before the acknowledgement.
        alert.notified_severity = None
    return changed


def _eased(current: str, condition: Condition) -> str:
    """The severity an alert at `current` takes: up at once; down only as far as the widened band allows."""
    new, sticky = condition.severity, condition.sticky_severity
    if SEVERITY_RANK[new] >= SEVERITY_RANK[current] or sticky is None:
        return new
    return max(new, min(current, sticky, key=SEVERITY_RANK.__getitem__), key=SEVERITY_RANK.__getitem__)
