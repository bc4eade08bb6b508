"""The alerting pipeline's service: gather → rules → reconcile → digest, and the alerts' API.

An evaluation runs on the job runtime (the schedule, `ALERT_CHECK_CRON`, and once at start-up) or on
demand (`POST /alerts/check`); the digest goes into the outbox in the evaluation's transaction, and the
outbox's delivery loop sends it: no e-mail is ever sent inside a request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import anyio
import pandas as pd

from salesflow.data.sale_lines import SaleLineCache
from salesflow.errors import NotFound
from salesflow.formatting import Formats
from salesflow.metrics import ALERT_EVALUATIONS
from salesflow.models.alerts import (
    AlertFilters,
    AlertKind,
    AlertNotification,
    AlertOut,
    AlertPage,
    AlertProduct,
    AlertState,
    Severity,
)
from salesflow.services.alerting import rules
from salesflow.services.alerting.digest import build_digest
from salesflow.services.analytics.demand import DemandRule
from salesflow.services.analytics.stock import StockAnalyticsService
from salesflow.services.ml.anomalies import AnomalyRules
from salesflow.state.alerts import Alerts, Changes, Condition, Digest, DigestPlanner
from salesflow.state.database import is_record_id
from salesflow.state.tables import Alert, OutgoingMail

logger = logging.getLogger(__name__)

SCHEDULED, STARTUP, ON_DEMAND = "schedule", "startup", "manual"  # what started an evaluation


class AlertService:
    def __init__(
        self,
        alerts: Alerts,
        stock: StockAnalyticsService,
        lines: SaleLineCache,
        *,
        anomaly_rules: AnomalyRules,
        demand_rule: DemandRule,
        dead_stock_days: int,
        anomaly_days: int,
        anomaly_min_share: float,
        history_days: int,
        recipients: list[str],
        notify_from: Mapping[AlertKind, str],
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        formats: Formats,
        digest_hour: int | None = None,
    ) -> None:
        self.alerts = alerts
        self.stock = stock
        self.lines = lines
        self.anomaly_rules = anomaly_rules
        self.demand_rule = demand_rule
        self.dead_stock_days = dead_stock_days
        self.anomaly_days = anomaly_days
        self.anomaly_min_share = anomaly_min_share
        self._judged: tuple[tuple[object, ...], list[Condition]] | None = None
        self.history_days = history_days
        self.recipients = recipients
        self.notify_from = notify_from
        self.zone = zone
        self.clock = clock
        self.formats = formats
        self.digest_hour = digest_hour

    async def check(self, *, trigger: str = ON_DEMAND, slot: datetime | None = None) -> Changes | None:
        """One evaluation; None when a scheduled `slot` was already evaluated (by another process)."""
        first = await self.alerts.last_check() is None
        check_id = await self.alerts.start_check(trigger=trigger, slot=slot)
        if check_id is None:
            return None
        ALERT_EVALUATIONS.labels(trigger).inc()
        try:
            conditions = await self.conditions()
            planner = await self._planner(first=first)
            changes = await self.alerts.reconcile(
                conditions, kinds=list(AlertKind), digest=planner, notify_from=self.notify_from
            )
        except Exception as exc:
            await self.alerts.finish_check(check_id, None, error=f"{type(exc).__name__}: {exc}"[:500])
            raise
        await self.alerts.finish_check(check_id, changes)
        if changes.opened or changes.resolved or changes.digest_mail_id:
            logger.info(
                "alerts checked",
                extra={
                    "trigger": trigger,
                    "opened": len(changes.opened),
                    "updated": len(changes.updated),
                    "resolved": len(changes.resolved),
                    "digest": changes.digest_mail_id,
                },
            )
        return changes

    async def check_now(self) -> Changes:
        """An on-demand evaluation (it has no slot, so nothing else can have taken it)."""
        changes = await self.check()
        if changes is None:
            raise RuntimeError("an on-demand alert check was not recorded")
        return changes

    async def conditions(self) -> list[Condition]:
        """Every condition that holds now (stock as of today; sales up to yesterday, the last whole day)."""
        today = self.lines.today()
        states = await self.stock.product_states(today)
        first_day = today - timedelta(days=self.history_days)
        lines = await self.lines.window(first_day, today - timedelta(days=1))
        stock = partial(
            rules.stock_conditions,
            states,
            rule=self.demand_rule,
            dead_stock_days=self.dead_stock_days,
            formats=self.formats,
        )
        found = await self._anomalies(lines, states, today=today, first_day=first_day)
        return await anyio.to_thread.run_sync(stock) + rules.explained_drops_left_out(found, states)

    async def _anomalies(
        self, lines: pd.DataFrame, states: pd.DataFrame, *, today: date, first_day: date
    ) -> list[Condition]:
        """The sales anomalies of the past days: judged once while the lines and the catalogue are the same
        (the day's later checks reuse it: an evaluation every 15 minutes costs the stock rules alone)."""
        catalogue = states[["product_id", "sku", "name", "unit_price"]]
        key = (
            today,
            len(lines),
            float(lines["quantity"].sum()),
            float(lines["subtotal"].sum()),
            int(pd.util.hash_pandas_object(catalogue, index=False).sum()),
        )
        if self._judged is not None and self._judged[0] == key:
            return self._judged[1]
        judge = partial(
            rules.anomaly_conditions,
            lines,
            states,
            today=today,
            first_day=first_day,
            rules=self.anomaly_rules,
            recent_days=self.anomaly_days,
            min_share=self.anomaly_min_share,
        )
        found = await anyio.to_thread.run_sync(judge)
        self._judged = (key, found)
        return found

    async def _planner(self, *, first: bool) -> DigestPlanner:
        """What this evaluation mails (`ALERT_DIGEST_HOUR`): without a digest hour, whatever opened or
        worsened; with one, everything not yet mailed in the first evaluation at or after that hour each
        day (the morning digest), and high severity alone at any other time."""
        local = self.clock().astimezone(self.zone)
        morning_key = f"alerts:daily:{local.date().isoformat()}"
        due = self.digest_hour is None or (
            local.hour >= self.digest_hour and not await self.alerts.outbox.has(morning_key)
        )

        def plan(unnotified: Sequence[Alert], unresolved: Sequence[Alert]) -> Digest | None:
            chosen = [a for a in unnotified if due or a.severity == Severity.HIGH]
            mail = build_digest(
                chosen,
                recipients=self.recipients,
                now=self.clock(),
                zone=self.zone,
                formats=self.formats,
                first=first,
                still_open=len(unresolved) - len(chosen),
            )
            if mail is None:
                return None
            key = morning_key if due and self.digest_hour is not None else f"alerts:{uuid.uuid4().hex}"
            return Digest(alerts=chosen, mail=mail, dedupe_key=key)

        return plan

    async def page(self, filters: AlertFilters, *, offset: int, limit: int) -> AlertPage:
        alerts, total = await self.alerts.page(filters, offset=offset, limit=limit)
        return AlertPage(data=await self.shaped(alerts), total=total, offset=offset, limit=limit)

    async def shaped(self, alerts: Sequence[Alert]) -> list[AlertOut]:
        """Alerts as the API shows them, each with the e-mail that told of it."""
        mails = await self.alerts.mails({a.mail_id for a in alerts if a.mail_id})
        return [alert_out(a, mails.get(a.mail_id) if a.mail_id else None) for a in alerts]

    async def acknowledge(self, alert_id: str, *, by: str) -> Alert:
        alert = await self.alerts.acknowledge(alert_id, by=by) if is_record_id(alert_id) else None
        if alert is None:
            raise NotFound(f"No alert {alert_id[:64]!r}")
        return alert


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
