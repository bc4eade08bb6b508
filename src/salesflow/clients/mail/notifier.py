"""Notifiers: one message out, by SMTP or into a folder. Retries and bookkeeping live in the outbox service
(services/notifications.py); a notifier only tries once and raises on failure."""

from __future__ import annotations

import mimetypes
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

import aiosmtplib
import anyio
from pydantic import SecretStr


@dataclass(frozen=True)
class Mail:
    recipients: list[str]
    subject: str
    body: str
    attachment_path: Path | None = None
    attachment_name: str | None = None
    html: str | None = None  # an alternative to the plain-text body
    written_at: datetime | None = None  # its `Date:` (when it was queued); None: when it is built


class Notifier(Protocol):
    kind: str

    async def send(self, mail: Mail, *, message_id: str) -> None: ...


def build_message(mail: Mail, *, sender: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(mail.recipients)
    message["Subject"] = mail.subject
    # Both headers are expected of every message (spam filters penalise their absence).
    message["Date"] = format_datetime(mail.written_at or datetime.now(UTC))
    message["Message-ID"] = make_msgid(idstring=message_id, domain="salesflow.local")
    message.set_content(mail.body)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    if mail.attachment_path is not None:
        media, _ = mimetypes.guess_type(mail.attachment_name or mail.attachment_path.name)
        main, _, sub = (media or "application/octet-stream").partition("/")
        message.add_attachment(
            mail.attachment_path.read_bytes(),
            maintype=main,
            subtype=sub,
            filename=mail.attachment_name or mail.attachment_path.name,
        )
    return message


class SmtpNotifier:
    kind = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None,
        password: SecretStr | None,
        start_tls: bool,
        use_tls: bool,
        timeout: float,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.start_tls, self.use_tls, self.timeout = start_tls, use_tls, timeout

    async def check(self) -> None:
        """The server answers its greeting and EHLO (and logs us in, with credentials); nothing is sent."""
        async with self._client() as client:
            await client.ehlo()

    async def send(self, mail: Mail, *, message_id: str) -> None:
        message = await anyio.to_thread.run_sync(
            lambda: build_message(mail, sender=self.sender, message_id=message_id)
        )
        async with self._client() as client:
            await client.send_message(message)

    def _client(self) -> aiosmtplib.SMTP:
        """A client that connects (TLS and login as configured) on entering its block and quits on leaving."""
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            start_tls=self.start_tls,
            use_tls=self.use_tls,
            timeout=self.timeout,
        )


class FolderNotifier:
    """Without SMTP: each message becomes `<id>.eml` in the outbox folder (written atomically, once)."""

    kind = "folder"

    def __init__(self, folder: Path, *, sender: str) -> None:
        self.folder, self.sender = folder, sender

    async def send(self, mail: Mail, *, message_id: str) -> None:
        def write() -> None:
            self.folder.mkdir(parents=True, exist_ok=True)
            data = bytes(build_message(mail, sender=self.sender, message_id=message_id))
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, self.folder / f"{message_id}.eml")

        await anyio.to_thread.run_sync(write)
