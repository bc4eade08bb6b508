"""The service's exception tree. Services and clients raise these; `api/errors.py` maps them to HTTP.

SalesflowError
├── AuthError             the caller is not authenticated (401)
│   └── TokenExpired          a genuine token past its expiry (401, never rate-limited)
├── PermissionDenied      authenticated, but the role does not allow it (403)
├── NotFound              the named thing does not exist (404)
├── Conflict              the request clashes with the current state (409)
├── InvalidInput          a field, row or value is wrong (422)
│   └── RowsRejected          no row of an uploaded file can be used (422, every row's problems listed)
├── PayloadTooLarge       an upload or body is over its size limit (413)
├── HeadersTooLarge       the request's headers are over their size limit (431)
├── TooManyRequests       the caller is over a rate limit (429, with Retry-After)
├── UpstreamError         the Java system of record failed us (502)
│   ├── UpstreamRejected      Java answered with an error about our request (502)
│   ├── UpstreamUnavailable   Java could not be reached or is down (503)
│   ├── UpstreamMalformed     Java's answer does not follow its contract (502)
│   └── UpstreamTimeout       Java did not answer in time (504)
├── QueueUnavailable      the job queue (Redis) is away (503)
├── StateUnavailable      the state database is away (503)
├── StorageFull           a file could not be written: its disk is full (507)
├── ReportNotReady        a report waited for is still being made (503, with Retry-After)
└── ReportFailed          a report waited for could not be made (500, with the job's reason)

`tests/test_errors_tree.py` keeps this tree equal to the classes below and to `api/errors.py`'s statuses.
"""

from __future__ import annotations


class SalesflowError(Exception):
    """Base of every error this service raises on purpose; `detail` is safe to show to a user."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AuthError(SalesflowError):
    """Raised when a request carries no usable credentials."""


class TokenExpired(AuthError):
    """A genuine token (its signature checks) past its expiry: the user must log in again. Never counted as
    a failed authentication, so it is a 401 however many bad tokens others sent."""


class PermissionDenied(SalesflowError):
    """Raised when the caller's role does not allow the operation."""


class NotFound(SalesflowError):
    """Raised when a product, import, job or file does not exist (or is not the caller's)."""


class Conflict(SalesflowError):
    """Raised when an operation clashes with the current state (e.g. a repeated commit)."""


class InvalidInput(SalesflowError):
    """Raised for bad input; names the field, and the row and value when there is one."""

    def __init__(
        self, detail: str, *, field: str | None = None, row: int | None = None, value: object = None
    ) -> None:
        super().__init__(detail)
        self.field = field
        self.row = row
        self.value = value


class RowsRejected(InvalidInput):
    """Raised when no row of an uploaded file is valid; `issues` lists every row's problems."""

    def __init__(self, detail: str, *, issues: list[dict[str, object]]) -> None:
        super().__init__(detail, field="file")
        self.issues = issues


class PayloadTooLarge(SalesflowError):
    """Raised when an upload exceeds the configured maximum size."""


class HeadersTooLarge(SalesflowError):
    """Raised when a request's headers exceed the configured maximum size."""


class TooManyRequests(SalesflowError):
    """Raised when a caller is over a rate limit; `retry_after` is when the window ends (seconds)."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamError(SalesflowError):
    """Raised when the Java system of record fails; `detail` names the upstream problem."""


class UpstreamRejected(UpstreamError):
    """Raised when Java answers our request with an error status."""

    def __init__(self, detail: str, *, status: int, code: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code


class UpstreamUnavailable(UpstreamError):
    """Raised when Java cannot be reached, refuses the connection or answers 5xx."""


class UpstreamMalformed(UpstreamError):
    """Raised when Java answers with a body that does not follow its contract (not JSON, wrong shape)."""


class UpstreamTimeout(UpstreamError):
    """Raised when Java does not answer within the configured timeout."""


class QueueUnavailable(SalesflowError):
    """Raised when a job cannot be handed to the job queue (Redis is away)."""


class StateUnavailable(SalesflowError):
    """Raised when the state database (jobs, schedules, alerts, imports, mail) cannot be reached."""


class StorageFull(SalesflowError):
    """Raised when a file cannot be written because its disk is full."""


class ReportNotReady(SalesflowError):
    """Raised when a report waited for in the request (`POST /reports/generate`) is not ready in time; the job
    goes on, and `detail` says where to follow it."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ReportFailed(SalesflowError):
    """Raised when a report waited for in the request failed; `detail` carries the job's reason."""
