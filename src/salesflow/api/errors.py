"""One error format for every failure: `{"detail": ...}`; our exceptions mapped to statuses in one table."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from salesflow import errors

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.SalesflowError], int] = {
    errors.AuthError: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 422,
    errors.PayloadTooLarge: 413,
    errors.HeadersTooLarge: 431,
    errors.TooManyRequests: 429,
    errors.UpstreamRejected: 502,
    errors.UpstreamUnavailable: 503,
    errors.UpstreamTimeout: 504,
    errors.UpstreamError: 502,
    errors.QueueUnavailable: 503,
    errors.StateUnavailable: 503,
    errors.StorageFull: 507,
    errors.ReportNotReady: 503,
    errors.ReportFailed: 500,
}


def status_for(kind: type[errors.SalesflowError]) -> int:
    """The status of the nearest mapped class in the error class's MRO (500 if none)."""
    for cls in kind.__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_response(exc: errors.SalesflowError) -> JSONResponse:
    """The response for one of our errors: the handlers' and the request guard's one format."""
    status = status_for(type(exc))
    log = logger.warning if status >= 500 else logger.info
    log("request failed", extra={"error": type(exc).__name__, "status": status, "detail": exc.detail})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, errors.TooManyRequests | errors.ReportNotReady):
        headers = {"Retry-After": str(exc.retry_after)}
    body: dict[str, object] = {"detail": exc.detail}
    if isinstance(exc, errors.RowsRejected):
        body = {"detail": exc.issues, "message": exc.detail}
    elif isinstance(exc, errors.InvalidInput):
        # FastAPI's own 422 shape (HTTPValidationError in the OpenAPI schema): loc, msg and type.
        loc: list[str | int] = ["request"] if exc.field is None else [exc.field]
        body["detail"] = [
            {
                "loc": loc if exc.row is None else ["row", exc.row, *loc],
                "msg": exc.detail,
                "type": "value_error",
                "input": _jsonable(exc.value),
            }
        ]
    return JSONResponse(body, status_code=status, headers=headers)


async def _salesflow_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, errors.SalesflowError):  # registered for SalesflowError only
        raise exc
    return error_response(exc)


class ErrorBody(BaseModel):
    """Every error but a 422: `{"detail": "..."}`."""

    detail: str


class FieldIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: object = None


class ValidationErrorBody(BaseModel):
    """A 422 as FastAPI shapes it: every field's problem."""

    detail: list[FieldIssue]


class RowIssue(BaseModel):
    row: int
    column: str | None
    value: object
    reason: str


class RowsRejectedBody(BaseModel):
    """A 422 for an upload of which no row can be used: every row's problems."""

    detail: list[RowIssue]
    message: str


ERROR_DESCRIPTIONS = {
    400: "A body that cannot be parsed (not UTF-8 JSON, or broken multipart)",
    401: "Missing, malformed, expired or invalid bearer token",
    403: "The caller's role does not allow this",
    404: "Not found (or not the caller's)",
    409: "Clashes with the current state",
    413: "Body or upload over its size limit",
    429: "Over a rate limit; Retry-After says when to try again",
    431: "Request headers over their size limit",
    500: "The work asked for failed on our side; the detail says why",
    502: "The Java system of record answered with an error, or with something outside its contract",
    503: (
        "Temporarily unavailable: the Java system of record, the job queue or the state database is"
        " unreachable, or (with Retry-After) the work is still going on; try again shortly"
    ),
    504: "The Java system of record did not answer in time",
    507: "A file could not be written: the service's disk is full; try again later",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for our error statuses."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}


def documented_file(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a 200 that is a file in one of `media_types`."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": "The file", "content": {media: binary for media in media_types}}}


MAX_OFFSET = 1_000_000  # the largest `offset` a listing accepts (deeper is a 422, never an overflow)


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, with inputs JSON cannot carry (NaN, ±Infinity, 1e999 read as inf) given as text."""
    if not isinstance(exc, RequestValidationError):  # registered for RequestValidationError only
        raise exc
    issues = [_bounded(issue) for issue in exc.errors()[:MAX_ISSUES_SHOWN]]
    return JSONResponse({"detail": _finite(jsonable_encoder(issues))}, status_code=422)


# A 422 names each field and echoes its input, within bounds: a body of 340,000 numbers is not sent back.
MAX_ISSUES_SHOWN = 20
MAX_INPUT_ITEMS = 10
MAX_INPUT_CHARS = 200


def _bounded(issue: Any) -> Any:
    if "input" not in issue:
        return issue
    return {**issue, "input": _shortened(issue["input"])}


def _shortened(value: object, depth: int = 0) -> object:
    if isinstance(value, str | bytes) and len(value) > MAX_INPUT_CHARS:
        return f"{value[:MAX_INPUT_CHARS]!s}… ({len(value):,} characters)"
    if depth >= 2 and isinstance(value, list | tuple | dict):
        return "…"
    if isinstance(value, list | tuple):
        shown: list[object] = [_shortened(item, depth + 1) for item in value[:MAX_INPUT_ITEMS]]
        return shown + ([f"… ({len(value):,} items)"] if len(value) > MAX_INPUT_ITEMS else [])
    if isinstance(value, dict):
        items = list(value.items())[:MAX_INPUT_ITEMS]
        return {str(key)[:MAX_INPUT_CHARS]: _shortened(item, depth + 1) for key, item in items}
    return value


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; unexpected exceptions are handled by `RequestContextMiddleware`."""
    app.add_exception_handler(errors.SalesflowError, _salesflow_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's answer, but a 405's `Allow` lists every method the document gives the path: the router
    named only those of the first route it matched (a path with a GET and a POST route said `Allow: POST`)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        named = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()}
        documented = _documented_methods(request.app, request.url.path)
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(named | documented))}
    return await http_exception_handler(request, exc)


def _documented_methods(app: FastAPI, path: str) -> set[str]:
    if not hasattr(app.state, "paths_methods"):  # built once: the document does not change while serving
        app.state.paths_methods = [
            (compile_path(template)[0], {method.upper() for method in item})
            for template, item in app.openapi()["paths"].items()
        ]
    return {m for pattern, methods in app.state.paths_methods if pattern.match(path) for m in methods}


def _jsonable(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | None) else str(value)
