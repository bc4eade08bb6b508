"""Report schedules (UC7): when each schedule fires (its local time, across DST changes), the run of a slot
(one per schedule and fire time, whoever fires it), and the e-mail of a finished run to its recipients.

Stages: a schedule (state/schedules.py) → its cron trigger (`trigger`) → the scheduler fires
(jobs/scheduler.py) → `fire` records the slot's run (a report job, unique per slot) and enqueues it → the
report pipeline makes it → `deliver` queues the file for the recipients in the outbox
(services/notifications.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from salesflow.clients.mail.notifier import Mail
from salesflow.errors import NotFound
from salesflow.models.analytics import Period
from salesflow.models.auth import ADMIN_SCOPE, User
from salesflow.models.reports import (
    Frequency,
    JobStatus,
    ReportFormat,
    ReportType,
    ScheduleFields,
    ScheduleRequest,
    ScheduleState,
)
from salesflow.models.weekdays import WEEKDAY_CODES
from salesflow.services.notifications import Notifications
from salesflow.services.reports.content import ReportContent, highlights
from salesflow.services.reports.pipeline import ReportService
from salesflow.state.database import is_record_id
from salesflow.state.report_jobs import NewJob
from salesflow.state.schedules import Schedules
from salesflow.state.tables import ReportJob, ReportSchedule

logger = logging.getLogger(__name__)


def trigger(schedule: ReportSchedule) -> CronTrigger:
    """The schedule's cron trigger in its own zone (APScheduler handles the DST gaps and repeats)."""
    zone = ZoneInfo(schedule.timezone)
    if schedule.frequency == Frequency.WEEKLY:
        days = ",".join(WEEKDAY_CODES[d] for d in schedule.weekdays)
        return CronTrigger(day_of_week=days, hour=schedule.hour, minute=schedule.minute, timezone=zone)
    if schedule.frequency == Frequency.MONTHLY:
        day = "last" if schedule.day_of_month == 31 else str(schedule.day_of_month)
        return CronTrigger(day=day, hour=schedule.hour, minute=schedule.minute, timezone=zone)
    return CronTrigger(hour=schedule.hour, minute=schedule.minute, timezone=zone)


def fire_times(schedule: ReportSchedule, start: datetime, end: datetime) -> list[datetime]:
    """Every slot of a schedule in `[start, end)`, in UTC (see `cron_fire_times`)."""
    return cron_fire_times(trigger(schedule), ZoneInfo(schedule.timezone), start, end)


def cron_fire_times(cron: CronTrigger, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every slot in `[start, end)`, in UTC. A wall time that happens twice (clocks going back) is one slot:
    its first occurrence, so that the second firing finds the slot's run already made."""
    times: list[datetime] = []
    moment = start.astimezone(UTC)
    while (fire := cron.get_next_fire_time(None, moment)) is not None and fire < end:
        slot = slot_of(fire, zone)
        if not times or slot != times[-1]:
            times.append(slot)
        moment = fire.astimezone(UTC) + timedelta(seconds=1)  # in UTC: wall-clock arithmetic loses the fold
    return times


def slot_of(fire: datetime, zone: ZoneInfo) -> datetime:
    """The slot a fire time belongs to: its local wall time's first occurrence, in UTC."""
    return fire.astimezone(zone).replace(fold=0).astimezone(UTC)


def last_fire_time(schedule: ReportSchedule, now: datetime, *, within: timedelta) -> datetime | None:
    """The latest slot in `(now - within, now]`, if any."""
    return last_cron_fire_time(trigger(schedule), ZoneInfo(schedule.timezone), now, within=within)


def last_cron_fire_time(
    cron: CronTrigger, zone: ZoneInfo, now: datetime, *, within: timedelta
) -> datetime | None:
    slots = cron_fire_times(cron, zone, now - within, now + timedelta(microseconds=1))
    return slots[-1] if slots else None


class ScheduleService:
    def __init__(
        self,
        schedules: Schedules,
        reports: ReportService,
        notifications: Notifications,
        *,
        default_timezone: str,
        clock: Callable[[], datetime],
        admin_email: str | None = None,
    ) -> None:
        self.admin_email = admin_email
        self.schedules = schedules
        self.reports = reports
        self.notifications = notifications
        self.default_timezone = default_timezone
        self.clock = clock
        self.on_change: Callable[[], None] = lambda: None  # the scheduler of this process resyncs at once

    async def create(self, request: ScheduleRequest, *, user: User, reuse: bool = False) -> ReportSchedule:
        """A new schedule; with `reuse`, the caller's identical schedule when there is one (asking twice
        for the same daily report makes one schedule, not two e-mails a day)."""
        fields = self._fields(request, user=user)
        if reuse and (same := await self.schedules.find(**fields)) is not None:
            return same
        schedule = await self.schedules.create(**fields)
        self.on_change()
        return schedule

    def _fields(self, request: ScheduleRequest, *, user: User) -> dict[str, Any]:
        return dict(
            owner=user.subject,
            owner_name=user.username,
            report_type=request.report_type,
            format=request.format or ReportFormat.PDF,
            period=request.period or "daily",
            frequency=request.frequency,
            weekdays=request.weekdays or [],
            day_of_month=request.day_of_month,
            hour=request.hour,
            minute=request.minute,
            timezone=request.timezone or self.default_timezone,
            recipients=[str(r) for r in request.recipients or []],
            enabled=True if request.enabled is None else request.enabled,
        )

    async def update(self, schedule_id: str, changes: ScheduleFields) -> ReportSchedule:
        current = await self.get(schedule_id)
        fields: dict[str, Any] = changes.model_dump(exclude_unset=True, exclude_none=True)
        if "recipients" in fields:
            fields["recipients"] = [str(r) for r in fields["recipients"]]
        merged = {**_fields_of(current), **fields}
        ScheduleRequest.model_validate(merged)  # the result must still be a whole schedule
        updated = await self.schedules.update(schedule_id, **fields)
        if updated is None:
            raise NotFound(f"No schedule {schedule_id!r}")
        self.on_change()
        return updated

    async def delete(self, schedule_id: str) -> None:
        if not await self.schedules.delete(schedule_id):
            raise NotFound(f"No schedule {schedule_id[:64]!r}")
        self.on_change()

    async def get(self, schedule_id: str) -> ReportSchedule:
        schedule = await self.schedules.get(schedule_id) if is_record_id(schedule_id) else None
        if schedule is None:
            raise NotFound(f"No schedule {schedule_id[:64]!r}")
        return schedule

    async def runs(self, schedule_id: str, *, limit: int = 50) -> Sequence[ReportJob]:
        await self.get(schedule_id)
        return await self.reports.jobs.runs(schedule_id, limit=limit)

    def shown(self, schedule: ReportSchedule) -> ScheduleState:
        """A schedule as the API shows it, with its next run."""
        return ScheduleState(
            schedule_id=schedule.id,
            report_type=ReportType(schedule.report_type),
            format=ReportFormat(schedule.format),
            period=Period(schedule.period),
            frequency=Frequency(schedule.frequency),
            weekdays=list(schedule.weekdays),
            day_of_month=schedule.day_of_month,
            hour=schedule.hour,
            minute=schedule.minute,
            timezone=schedule.timezone,
            recipients=list(schedule.recipients),
            enabled=schedule.enabled,
            owner=schedule.owner_name,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
            next_run_at=self.next_run(schedule),
        )

    def next_run(self, schedule: ReportSchedule) -> datetime | None:
        if not schedule.enabled:
            return None
        upcoming: datetime | None = trigger(schedule).get_next_fire_time(None, self.clock())
        return upcoming

    async def fire(self, schedule_id: str, fire_time: datetime) -> ReportJob | None:
        """The run of one slot: recorded once (a second scheduler firing the same slot gets None), then
        enqueued."""
        schedule = await self.schedules.get(schedule_id)
        if schedule is None or not schedule.enabled:
            return None
        # A scheduled daily report is of the last complete day (today has only begun when it runs).
        last_day = fire_time.astimezone(ZoneInfo(schedule.timezone)).date() - timedelta(days=1)
        day = last_day if schedule.period == Period.DAILY else None
        job = await self.reports.jobs.create_scheduled(
            NewJob(
                owner=schedule.owner,
                owner_name=schedule.owner_name,
                scope=ADMIN_SCOPE,  # scheduled runs read with the service account, as an ADMIN sees
                report_type=schedule.report_type,
                format=schedule.format,
                period=schedule.period,
                start_date=day,
                end_date=day,
            ),
            schedule_id=schedule.id,
            fire_time=fire_time,
        )
        if job is not None:
            logger.info(
                "schedule fired", extra={"schedule_id": schedule.id, "fire_time": fire_time.isoformat()}
            )
            await self.reports.send(job.id)
        return job

    async def catch_up(self, *, grace: timedelta) -> int:
        """At start-up: the latest slot of each schedule missed while everything was down runs once (not
        once per missed slot), if it is within `grace`."""
        fired = 0
        now = self.clock()
        for schedule in await self.schedules.enabled():
            slot = last_fire_time(schedule, now, within=grace)
            if slot is not None and not await self.reports.jobs.has_run(schedule.id, slot):
                fired += await self.fire(schedule.id, slot) is not None
        return fired

    async def deliver(self, job: ReportJob, content: ReportContent) -> None:
        """A finished scheduled run goes to its schedule's recipients (once: keyed by the job), with the key
        lines of what its file shows."""
        if job.schedule_id is None or job.status != JobStatus.COMPLETED or job.file_name is None:
            return
        schedule = await self.schedules.get(job.schedule_id)
        if schedule is None or not schedule.recipients:
            return
        report_format = ReportFormat(job.format)
        when = (job.fire_time or job.created_at).astimezone(ZoneInfo(schedule.timezone))
        label = content.period_label
        key_lines = "\n".join(f"  {line}" for line in highlights(content))
        await self.notifications.queue(
            Mail(
                recipients=list(schedule.recipients),
                subject=f"SalesFlow {job.report_type} report: {label}",
                body=(
                    f"Your scheduled {job.report_type} report for {label} is attached.\n\n"
                    + (f"{key_lines}\n\n" if key_lines else "")
                    + f"Schedule {schedule.id}, run of {when:%Y-%m-%d %H:%M %Z}.\n"
                ),
                attachment_path=self.reports.store.path(job.id, report_format),
                attachment_name=job.file_name,
            ),
            dedupe_key=f"report:{job.id}",
        )

    async def report_failure(self, job: ReportJob) -> None:
        """A scheduled run that failed is told to its recipients and to `ADMIN_EMAIL` (once: keyed by the
        job), with the reason: nobody waits for a report that will not come."""
        if job.schedule_id is None or job.status != JobStatus.FAILED:
            return
        schedule = await self.schedules.get(job.schedule_id)
        if schedule is None:
            return
        recipients = list(
            dict.fromkeys([*schedule.recipients, *([self.admin_email] if self.admin_email else [])])
        )
        if not recipients:
            return
        when = (job.fire_time or job.created_at).astimezone(ZoneInfo(schedule.timezone))
        await self.notifications.queue(
            Mail(
                recipients=recipients,
                subject=f"SalesFlow {job.report_type} report could not be made",
                body=(
                    f"The scheduled {job.report_type} report of {when:%Y-%m-%d %H:%M %Z} could not be made:"
                    f"\n\n  {job.error or 'no reason was recorded'}\n\nThe schedule stays on: its next run"
                    f" is at the usual time. Schedule {schedule.id}.\n"
                ),
            ),
            dedupe_key=f"report-failed:{job.id}",
        )


def _fields_of(schedule: ReportSchedule) -> dict[str, Any]:
    """A stored schedule as request fields (a daily or monthly one stores no weekdays: none, not [])."""
    fields = {
        name: getattr(schedule, name)
        for name in (
            "report_type",
            "format",
            "period",
            "frequency",
            "weekdays",
            "day_of_month",
            "hour",
            "minute",
            "timezone",
            "recipients",
            "enabled",
        )
    }
    return fields | {"weekdays": fields["weekdays"] or None}
