"""Reports (UC6): jobs with a lifecycle (submit → poll → download), and the frontend's one-call route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from salesflow.api.deps import CurrentUser, ReportsDep, SettingsDep, limit_expensive
from salesflow.api.envelope import EnvelopeRoute
from salesflow.api.errors import MAX_OFFSET, documented, documented_file
from salesflow.errors import ReportFailed, ReportNotReady
from salesflow.models.reports import (
    GenerateReportRequest,
    JobAccepted,
    JobStatus,
    ReportJobPage,
    ReportJobState,
    ReportRequest,
)
from salesflow.services.reports.artifacts import MEDIA_TYPES
from salesflow.services.reports.pipeline import RETRY_AFTER_BUSY_SECONDS, job_state

router = APIRouter(prefix="/reports", tags=["reports"], route_class=EnvelopeRoute)


def download_path(request: Request) -> Callable[[str], str]:
    """A finished job's download path, as this app routes it."""
    return lambda job_id: str(request.url_for("download_report", job_id=job_id).path)


@router.post("/jobs", status_code=202, responses=documented(429), dependencies=[Depends(limit_expensive)])
async def submit_report(
    body: ReportRequest, user: CurrentUser, reports: ReportsDep, request: Request
) -> JobAccepted:
    """Queue a report; poll `status_url`, then fetch `download_url`."""
    job = await reports.submit(body, user=user)
    return JobAccepted(
        job_id=job.id,
        status=JobStatus(job.status),
        status_url=str(request.url_for("read_report_job", job_id=job.id).path),
        download_url=str(request.url_for("download_report", job_id=job.id).path),
    )


@router.get("/jobs")
async def list_report_jobs(
    user: CurrentUser,
    reports: ReportsDep,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReportJobPage:
    """The caller's report jobs (an ADMIN's: everyone's), newest first."""
    jobs, total = await reports.page(user=user, offset=offset, limit=limit)
    path = download_path(request)
    return ReportJobPage(data=[job_state(j, path) for j in jobs], total=total, offset=offset, limit=limit)


@router.get("/jobs/{job_id}", responses=documented(404))
async def read_report_job(
    job_id: str, user: CurrentUser, reports: ReportsDep, request: Request
) -> ReportJobState:
    return job_state(await reports.get(job_id, user=user), download_path(request))


@router.get(
    "/jobs/{job_id}/download",
    responses={**documented_file(*MEDIA_TYPES.values()), **documented(404)},
    response_class=FileResponse,
)
async def download_report(job_id: str, user: CurrentUser, reports: ReportsDep) -> FileResponse:
    """The finished file (404 until the job is completed, or after the retention period)."""
    found = await reports.file(job_id, user=user)
    return FileResponse(found.path, media_type=found.media_type, filename=found.name)


@router.post(
    "/generate",
    responses={**documented_file(*MEDIA_TYPES.values()), **documented(404, 429, 500, 502, 503, 504, 507)},
    dependencies=[Depends(limit_expensive)],
)
async def generate_report(
    body: GenerateReportRequest,
    user: CurrentUser,
    reports: ReportsDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    """The frontend's call: the same job, waited for; the file bytes with a plain `filename="…"`."""
    job = await reports.submit(
        ReportRequest(report_type=body.report_type, format=body.format, period=body.period), user=user
    )
    follow = request.url_for("read_report_job", job_id=job.id).path
    try:
        with anyio.fail_after(settings.reports.wait_seconds):
            job = await reports.wait(job.id)
    except TimeoutError as exc:
        raise ReportNotReady(
            f"the report was not ready within {settings.reports.wait_seconds:g} s; it is still being made:"
            f" follow {follow}",
            retry_after=RETRY_AFTER_BUSY_SECONDS,
        ) from exc
    if job.status == JobStatus.FAILED:
        raise ReportFailed(f"the report could not be generated ({follow}): {job.error}")
    found = await reports.file(job.id, user=user)
    content = await anyio.Path(found.path).read_bytes()
    return Response(
        content,
        media_type=found.media_type,
        headers={"Content-Disposition": f'attachment; filename="{found.name}"'},
    )
