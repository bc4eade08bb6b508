"""Notifications: messages go into the outbox (state database) and a delivery loop sends what is due through
the notifier (SMTP, or `.eml` files without `SMTP_HOST`). A failed send is retried with exponential backoff
and kept after the last attempt (`failed`, with the error), never dropped silently; each message has a
dedupe key, so one cause (a scheduled run, an alert) is mailed once. The alerting pipeline reuses this."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from salesflow.clients.mail.notifier import Mail, Notifier
from salesflow.metrics import MAILS
from salesflow.models.alerts import MailStatus
from salesflow.state.outbox import Outbox

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30.0
SEND_LEASE_SECONDS = 300.0
FAILING_AFTER_ATTEMPTS = 3  # readiness reports a message still unsent after this many tries
FAILED_SHOWN_DAYS = 7  # and one given up on for this long


class UndeliveredMail(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail  # shown by readiness


class Notifications:
    def __init__(self, outbox: Outbox, notifier: Notifier) -> None:
        self.outbox = outbox
        self.notifier = notifier

    async def queue(self, mail: Mail, *, dedupe_key: str) -> bool:
        return await self.outbox.add(mail, dedupe_key=dedupe_key)

    async def deliver_due(self) -> int:
        """Send what is due now; the number sent."""
        sent = 0
        for row in await self.outbox.claim_due(lease_seconds=SEND_LEASE_SECONDS):
            mail = Mail(
                recipients=list(row.recipients),
                subject=row.subject,
                body=row.body,
                attachment_path=Path(row.attachment_path) if row.attachment_path else None,
                attachment_name=row.attachment_name,
                html=row.html,
                written_at=row.created_at,
            )
            try:
                await self.notifier.send(mail, message_id=row.id)
            except Exception as exc:  # kept and retried; after the last attempt kept as failed
                MAILS.labels(MailStatus.FAILED).inc()
                error = f"{type(exc).__name__}: {exc}"[:500]
                if row.attempts >= MAX_ATTEMPTS:
                    logger.error("e-mail given up", extra={"mail_id": row.id, "error": error})
                    await self.outbox.give_up(row.id, error=error)
                else:
                    delay = FIRST_RETRY_SECONDS * 2 ** (row.attempts - 1)
                    logger.warning("e-mail send failed; retrying", extra={"mail_id": row.id, "in_s": delay})
                    await self.outbox.retry_later(row.id, error=error, delay_seconds=delay)
                continue
            MAILS.labels(MailStatus.SENT).inc()
            await self.outbox.sent(row.id)
            sent += 1
        return sent

    async def check(self) -> None:
        """Readiness: raises, naming them, while messages fail or were given up on lately."""
        since = self.outbox.clock() - timedelta(days=FAILED_SHOWN_DAYS)
        failing = await self.outbox.undelivered(since=since, min_attempts=FAILING_AFTER_ATTEMPTS)
        if failing:
            latest = failing[0]
            raise UndeliveredMail(
                f"{len(failing)} e-mail(s) not delivered; latest {latest.id} ({latest.status}, "
                f"{latest.attempts} attempts): {latest.last_error}"
            )
