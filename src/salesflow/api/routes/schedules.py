"""Report schedules (UC7), ADMIN only: CRUD, their runs, and the frontend's two schedule calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from salesflow.api.deps import CurrentUser, ReportsDep, SchedulesDep, require_roles
from salesflow.api.envelope import EnvelopeRoute
from salesflow.api.errors import documented
from salesflow.api.routes.reports import download_path
from salesflow.errors import NotFound
from salesflow.models.auth import Role
from salesflow.models.reports import (
    LegacyScheduleAnswer,
    LegacyScheduleRequest,
    ReportFormat,
    ReportJobPage,
    ReportType,
    ScheduleFields,
    ScheduleList,
    ScheduleRequest,
    ScheduleState,
)
from salesflow.services.reports.artifacts import MEDIA_TYPES
from salesflow.services.reports.pipeline import job_state

router = APIRouter(
    prefix="/reports",
    tags=["schedules"],
    route_class=EnvelopeRoute,
    dependencies=[Depends(require_roles(Role.ADMIN))],  # schedules run with the system's identity
)


@router.post("/schedules", status_code=201)
async def create_schedule(body: ScheduleRequest, user: CurrentUser, service: SchedulesDep) -> ScheduleState:
    """A report made at a local time; `timezone` defaults to BUSINESS_TZ."""
    return service.shown(await service.create(body, user=user))


@router.get("/schedules")
async def list_schedules(service: SchedulesDep) -> ScheduleList:
    schedules, total = await service.schedules.page()
    return ScheduleList(data=[service.shown(s) for s in schedules], total=total)


@router.get("/schedules/{schedule_id}", responses=documented(404))
async def read_schedule(schedule_id: str, service: SchedulesDep) -> ScheduleState:
    return service.shown(await service.get(schedule_id))


@router.patch("/schedules/{schedule_id}", responses=documented(404))
async def update_schedule(schedule_id: str, body: ScheduleFields, service: SchedulesDep) -> ScheduleState:
    return service.shown(await service.update(schedule_id, body))


@router.delete("/schedules/{schedule_id}", status_code=204, responses=documented(404))
async def delete_schedule(schedule_id: str, service: SchedulesDep) -> Response:
    await service.delete(schedule_id)
    return Response(status_code=204)


@router.get("/schedules/{schedule_id}/runs", responses=documented(404))
async def schedule_runs(
    schedule_id: str,
    service: SchedulesDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReportJobPage:
    runs = list(await service.runs(schedule_id, limit=limit))
    path = download_path(request)
    return ReportJobPage(data=[job_state(j, path) for j in runs], total=len(runs), offset=0, limit=limit)


@router.post("/schedule")
async def schedule_daily_report(
    body: LegacyScheduleRequest, user: CurrentUser, service: SchedulesDep
) -> LegacyScheduleAnswer:
    """The frontend's call: a daily report at `hour:minute` (BUSINESS_TZ); `job_id` is the schedule's id."""
    request = ScheduleRequest(
        report_type=body.report_type, format=body.format, hour=body.hour, minute=body.minute
    )
    schedule = await service.create(request, user=user, reuse=True)
    return LegacyScheduleAnswer(job_id=schedule.id, hour=schedule.hour, minute=schedule.minute)


@router.get("/scheduled/latest", responses=documented(404), response_class=FileResponse)
async def latest_scheduled_report(
    reports: ReportsDep,
    report_type: ReportType = ReportType.SALES,
    format: ReportFormat = ReportFormat.PDF,
) -> FileResponse:
    """The newest file a schedule produced for this type and format; 404: none yet."""
    job = await reports.jobs.latest_scheduled(report_type=report_type, report_format=format)
    path = reports.store.path(job.id, format) if job is not None else None
    if job is None or path is None or not path.exists() or job.file_name is None:
        raise NotFound(f"No scheduled {report_type} report in {format} yet")
    return FileResponse(path, media_type=MEDIA_TYPES[format], filename=job.file_name)
