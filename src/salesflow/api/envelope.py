"""The frontend's POST envelope `{"payload": ..., "required_roles": [...]}`, unwrapped in one place.

Every JSON body route accepts the envelope and the bare request object (frontend-contract.md). The route
class below unwraps the envelope before FastAPI validates the body; `required_roles` is dropped and never
grants anything: guards use only the caller's token.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

_ENVELOPE_KEYS = frozenset({"payload", "required_roles"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def unwrap_envelope(body: bytes) -> bytes | None:
    """The payload's JSON if `body` is an envelope, else None (the body is used as it is)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict) and "payload" in document and document.keys() <= _ENVELOPE_KEYS:
        return orjson.dumps(document["payload"])
    return None


class EnvelopeRoute(APIRoute):
    """Route class for routers whose JSON bodies may come wrapped in the frontend's envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def unwrap_then_handle(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if request.method in _BODY_METHODS and content_type.startswith("application/json"):
                unwrapped = unwrap_envelope(await request.body())
                if unwrapped is not None:
                    request._body = unwrapped  # Starlette serves later `body()`/`json()` calls from it
            return await handler(request)

        return unwrap_then_handle
