"""One error format for every failure: `{"detail": ...}`; our exceptions mapped to statuses in one table."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from salesflow import errors

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.SalesflowError], int] = {
    errors.AuthError: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 422,
    errors.PayloadTooLarge: 413,
    errors.UpstreamRejected: 502,
    errors.UpstreamUnavailable: 503,
    errors.UpstreamTimeout: 504,
    errors.UpstreamError: 502,
}


def status_for(exc: errors.SalesflowError) -> int:
    """The status of the nearest mapped class in the exception's MRO (500 if none)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


async def _salesflow_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, errors.SalesflowError):  # registered for SalesflowError only
        raise exc
    status = status_for(exc)
    log = logger.warning if status >= 500 else logger.info
    log("request failed", extra={"error": type(exc).__name__, "status": status, "detail": exc.detail})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body: dict[str, object] = {"detail": exc.detail}
    if isinstance(exc, errors.RowsRejected):
        body = {"detail": exc.issues, "message": exc.detail}
    elif isinstance(exc, errors.InvalidInput) and exc.field is not None:
        body["detail"] = [
            {
                "loc": [exc.field] if exc.row is None else ["row", exc.row, exc.field],
                "msg": exc.detail,
                "input": _jsonable(exc.value),
            }
        ]
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; unexpected exceptions are handled by `RequestContextMiddleware`."""
    app.add_exception_handler(errors.SalesflowError, _salesflow_error_handler)


def _jsonable(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | None) else str(value)
