"""Request context (request id, structured access log, a generic 500 for anything unexpected) and the
request guard (sizes and credentials checked before any body is read)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from salesflow.api.errors import error_response
from salesflow.errors import HeadersTooLarge, PayloadTooLarge, SalesflowError
from salesflow.metrics import HTTP_DURATION, HTTP_REQUESTS
from salesflow.observability import request_id_var

logger = logging.getLogger("salesflow.access")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Pure ASGI middleware (so it also wraps errors that escape every handler)."""

    def __init__(
        self, app: ASGIApp, *, stale_since: Callable[[Scope], datetime | None] = lambda scope: None
    ) -> None:
        self.app = app
        self.stale_since = stale_since  # since when the data served is the last known (the source failing)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                present = {name.lower() for name, _ in message["headers"]}
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
                    *(header for header in _security_headers(scope["path"]) if header[0] not in present),
                ]
                stale = self.stale_since(scope)
                if stale is not None:
                    message["headers"].append((STALE_HEADER.lower().encode(), stale.isoformat().encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error")
            if not response_started:
                await _send_generic_500(send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = _route_template(scope)
            HTTP_REQUESTS.labels(route or UNMATCHED_ROUTE, str(status)).inc()
            HTTP_DURATION.labels(route or UNMATCHED_ROUTE).observe(duration)
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
            request_id_var.reset(token)


# Every response: no MIME sniffing, no framing, no referrer, no caching of answers that carry shop data, and a
# policy that lets a JSON or file answer load nothing. The OpenAPI pages load Swagger UI's scripts: no policy.
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_CONTENT_SECURITY_POLICY = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_PAGES = ("/docs", "/redoc")
STALE_HEADER = "X-Data-Stale-Since"  # on every answer while the data source fails and the last data is served
UNMATCHED_ROUTE = "unmatched"  # metrics label for paths no route serves (keeps the label set bounded)


def _security_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    if path.startswith(_PAGES):
        return _SECURITY_HEADERS
    return (*_SECURITY_HEADERS, _CONTENT_SECURITY_POLICY)


def _route_template(scope: Scope) -> str | None:
    """The matched route's full path template (`/api/v1/...`), for logs grouped by route."""
    # FastAPI keeps the prefixed template on the effective route context of nested routers.
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else None


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.match(text) else None
    return None


async def _send_generic_500(send: Send) -> None:
    body = orjson.dumps({"detail": "Internal server error"})
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Limits before work, checked before any route reads its body: the headers' size (431), then for a
    request with a body, the caller's credentials on protected paths (401) and the body's size, declared or
    streamed — uploads up to `upload_max_bytes`, any other body up to `body_max_bytes` (413). FastAPI reads
    and parses a body before it runs the route's dependencies: without this, an anonymous caller could have
    any body buffered and parsed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_max_bytes: int,
        upload_max_bytes: int,
        header_max_bytes: int,
        is_upload: Callable[[Scope], bool],
        is_public: Callable[[Scope], bool],
        authenticate: Callable[[Scope], Awaitable[object]],
    ) -> None:
        self.app = app
        self.body_max_bytes = body_max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.header_max_bytes = header_max_bytes
        self.is_upload = is_upload
        self.is_public = is_public
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if sum(len(name) + len(value) for name, value in headers) > self.header_max_bytes:
            limit = self.header_max_bytes // 1024
            await _reply(scope, receive, send, HeadersTooLarge(f"the request headers exceed {limit} KiB"))
            return
        fields = dict(headers)
        declared = fields.get(b"content-length")
        if not (declared not in (None, b"0") or b"transfer-encoding" in fields):
            await self.app(scope, receive, send)  # no body: nothing to read before the route's own checks
            return
        if not self.is_public(scope):
            try:
                await self.authenticate(scope)
            except SalesflowError as exc:
                await _reply(scope, receive, send, exc)
                return
        upload = self.is_upload(scope)
        allowed = self.upload_max_bytes if upload else self.body_max_bytes
        limit = allowed + _MULTIPART_SLACK if upload else allowed
        what = "file" if upload else "request body"
        too_large = PayloadTooLarge(f"the {what} is larger than the {_size(allowed)} allowed")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _reply(scope, receive, send, too_large)
            return
        received, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body has no declared length: stop it as it streams
                    refused = True
                    await _reply(scope, receive, send, too_large)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 is the answer; whatever the route tries after it is dropped
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise


_MULTIPART_SLACK = 64 * 1024  # the form's boundaries and other fields around the file


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 and limit % 2**20 == 0 else f"{limit // 1024} KiB"


async def _reply(scope: Scope, receive: Receive, send: Send, exc: SalesflowError) -> None:
    await error_response(exc)(scope, receive, send)
