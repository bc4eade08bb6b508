"""Our exceptions map to one status each; the nearest mapped class wins."""

from __future__ import annotations

import pytest

from salesflow import errors
from salesflow.api.errors import status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.AuthError("x"), 401),
        (errors.PermissionDenied("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.Conflict("x"), 409),
        (errors.InvalidInput("x", field="quantity", row=3, value=1.5), 422),
        (errors.UpstreamRejected("x", status=400, code="RUNTIME_ERROR"), 502),
        (errors.UpstreamUnavailable("x"), 503),
        (errors.UpstreamTimeout("x"), 504),
        (errors.UpstreamError("x"), 502),
        (errors.SalesflowError("x"), 500),
    ],
)
def test_each_error_has_its_status(error: errors.SalesflowError, status: int) -> None:
    assert status_for(type(error)) == status
