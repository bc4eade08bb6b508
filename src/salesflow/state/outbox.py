"""The mail outbox: each message kept until sent, claimed by one sender at a time, retried with backoff."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from salesflow.clients.mail.notifier import Mail
from salesflow.models.alerts import MailStatus
from salesflow.state.database import StateDatabase
from salesflow.state.tables import OutgoingMail

# Due again once its lease ends: a sender that died while `sending` frees its message.
UNSENT = (MailStatus.PENDING, MailStatus.SENDING)


class Outbox:
    def __init__(self, db: StateDatabase, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def row(self, mail: Mail, *, dedupe_key: str) -> OutgoingMail:
        """The outbox row of a message, for a caller that queues it in its own transaction."""
        now = self.clock()
        return OutgoingMail(
            id=uuid.uuid4().hex,
            recipients=list(mail.recipients),
            subject=mail.subject,
            body=mail.body,
            html=mail.html,
            attachment_path=str(mail.attachment_path) if mail.attachment_path else None,
            attachment_name=mail.attachment_name,
            status=MailStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            dedupe_key=dedupe_key,
        )

    async def add(self, mail: Mail, *, dedupe_key: str) -> bool:
        """Keep a message to send; False when the same cause already queued one (it is never sent twice)."""
        row = self.row(mail, dedupe_key=dedupe_key)
        try:
            async with self.db.session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            return False
        return True

    async def has(self, dedupe_key: str) -> bool:
        """Whether a message of this cause was ever queued."""
        async with self.db.session() as session:
            found = await session.scalar(select(OutgoingMail.id).where(OutgoingMail.dedupe_key == dedupe_key))
            return found is not None

    async def claim_due(self, *, lease_seconds: float, limit: int = 20) -> Sequence[OutgoingMail]:
        """Messages due now, each taken by this sender alone (one that died frees them after the lease)."""
        now = self.clock()
        async with self.db.session() as session:
            ids = list(
                await session.scalars(
                    select(OutgoingMail.id)
                    .where(
                        OutgoingMail.status.in_(UNSENT),
                        OutgoingMail.next_attempt_at <= now,
                    )
                    .order_by(OutgoingMail.next_attempt_at)
                    .limit(limit)
                )
            )
        claimed = []
        for mail_id in ids:
            async with self.db.session() as session, session.begin():
                taken = await session.execute(
                    update(OutgoingMail)
                    .where(
                        OutgoingMail.id == mail_id,
                        OutgoingMail.status.in_(UNSENT),
                        OutgoingMail.next_attempt_at <= now,
                    )
                    .values(
                        status=MailStatus.SENDING,
                        attempts=OutgoingMail.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=lease_seconds),
                    )
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    row = await session.get(OutgoingMail, mail_id)
                    if row is not None:
                        claimed.append(row)
        return claimed

    async def sent(self, mail_id: str) -> None:
        await self._set(mail_id, status=MailStatus.SENT, sent_at=self.clock(), last_error=None)

    async def retry_later(self, mail_id: str, *, error: str, delay_seconds: float) -> None:
        await self._set(
            mail_id,
            status=MailStatus.PENDING,
            last_error=error,
            next_attempt_at=self.clock() + timedelta(seconds=delay_seconds),
        )

    async def give_up(self, mail_id: str, *, error: str) -> None:
        await self._set(mail_id, status=MailStatus.FAILED, last_error=error)

    async def undelivered(self, *, since: datetime, min_attempts: int) -> Sequence[OutgoingMail]:
        """Messages given up on since `since`, and those still failing after `min_attempts` tries."""
        async with self.db.session() as session:
            return list(
                await session.scalars(
                    select(OutgoingMail)
                    .where(
                        OutgoingMail.last_error.is_not(None),
                        or_(
                            (OutgoingMail.status == MailStatus.FAILED) & (OutgoingMail.created_at >= since),
                            (OutgoingMail.status != MailStatus.SENT)
                            & (OutgoingMail.attempts >= min_attempts),
                        ),
                    )
                    .order_by(OutgoingMail.created_at.desc())
                    .limit(20)
                )
            )

    async def all(self) -> Sequence[OutgoingMail]:
        async with self.db.session() as session:
            return list(await session.scalars(select(OutgoingMail).order_by(OutgoingMail.created_at)))

    async def _set(self, mail_id: str, **values: object) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id == mail_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
