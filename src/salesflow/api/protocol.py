"""uvicorn's HTTP protocol with a deadline for a request's headers. uvicorn has none: a client sending its
headers a byte every few seconds (slowloris) held a connection, and a file descriptor, for as long as it
liked, and a thousand of them left none for anyone else. The production proxy should enforce its own (see
README); this one holds when the service is reached directly."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from salesflow.metrics import HEADER_TIMEOUTS


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers are not complete `header_timeout_seconds` after it opened,
    or after its next request began (keep-alive: the idle time between requests is uvicorn's own timeout)."""

    header_timeout_seconds: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_seconds, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        HEADER_TIMEOUTS.inc()
        if not self.transport.is_closing():
            self.transport.close()


def with_header_deadline(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to give uvicorn (`http=`), with this deadline."""
    return type(
        HeaderDeadlineProtocol.__name__, (HeaderDeadlineProtocol,), {"header_timeout_seconds": seconds}
    )
