"""`GET /metrics`: this process's Prometheus metrics (outside `/api/v1`, where scrapers look for them).

Off with `METRICS_ENABLED=false`. In DEV mode open; in PROD the caller shows `METRICS_TOKEN` as a bearer token
(what a Prometheus scrape job sends) or an ADMIN user's JWT."""

from __future__ import annotations

import hmac
import logging

import anyio
from fastapi import APIRouter, Request, Response

from salesflow.api.deps import ResourcesDep, authenticate_request
from salesflow.errors import NotFound, PermissionDenied
from salesflow.metrics import JOB_QUEUE, REPORT_JOBS, exposition
from salesflow.models.auth import Role
from salesflow.models.reports import JobStatus
from salesflow.resources import Resources

logger = logging.getLogger(__name__)

BACKLOG_READ_SECONDS = 1.0

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, resources: ResourcesDep) -> Response:
    """Requests, caches, Java calls, jobs, schedules, alerts, e-mails and sandbox kills of this process."""
    settings = resources.settings
    if not settings.metrics.enabled:
        raise NotFound("Not Found")
    authorization = request.headers.get("Authorization") or ""
    token = settings.metrics.token
    scheme, _, presented = authorization.partition(" ")
    shows_token = (
        token is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())
    )
    if not shows_token:
        # A wrong token counts as a failed authentication, as on every other route (rate-limited per client).
        user = await authenticate_request(request, resources)
        if not user.has_any_role(Role.ADMIN):
            raise PermissionDenied("Metrics need METRICS_TOKEN or an ADMIN user")
    await _read_job_backlog(resources)
    body, content_type = exposition()
    return Response(body, media_type=content_type)


async def _read_job_backlog(resources: Resources) -> None:
    """The shared backlog (state database, Redis queue), read at each scrape; a failed read leaves the last
    values (readiness reports the dependency) rather than failing the scrape."""
    try:
        with anyio.fail_after(BACKLOG_READ_SECONDS):
            by_status = await resources.reports.jobs.count_by_status()
            depth = await resources.jobs.queue_depth()
    except Exception:
        logger.warning("job backlog not read for the metrics", exc_info=True)
        return
    for status in (JobStatus.QUEUED, JobStatus.GENERATING):
        REPORT_JOBS.labels(status.value).set(by_status.get(status.value, 0))
    for (queue, state), count in depth.items():
        JOB_QUEUE.labels(queue.value, state).set(count)
