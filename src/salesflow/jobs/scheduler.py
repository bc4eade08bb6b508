"""The scheduler: APScheduler 3 in each process that runs it (`SCHEDULER_ENABLED`), one cron job per enabled
schedule. Firing only records the slot's run and enqueues it (services/schedules.py): with several processes
scheduling, each slot still yields one run, because (schedule, fire time) is unique in the state database.
Schedules changed through this process apply at once; changes made elsewhere within `SCHEDULE_SYNC_SECONDS`.
At start-up the latest slot missed while everything was down runs once, within `SCHEDULE_GRACE_SECONDS`."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from salesflow.errors import SalesflowError
from salesflow.heartbeat import BackgroundTasks
from salesflow.metrics import SCHEDULE_FIRINGS
from salesflow.services.schedules import ScheduleService, last_cron_fire_time, last_fire_time, trigger

logger = logging.getLogger(__name__)

SYNC_JOB = "salesflow.schedules.sync"
STALE_SYNCS = 3  # syncs missed in a row before readiness reports the scheduler


@dataclass(frozen=True)
class Periodic:
    """A job of the service's own on a cron (the alert checks): each firing enqueues `enqueue(slot)`, the
    slot being the fire time every scheduling process computes alike."""

    job_id: str
    cron: CronTrigger
    zone: ZoneInfo
    enqueue: Callable[[datetime], Awaitable[None]]


class ScheduleRunner:
    def __init__(
        self,
        service: ScheduleService,
        *,
        sync_seconds: float,
        grace_seconds: float,
        periodic: Sequence[Periodic] = (),
    ) -> None:
        self.service = service
        self.periodic = periodic
        self.sync_seconds = sync_seconds
        self.grace = timedelta(seconds=grace_seconds)
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(grace_seconds)},
        )
        self._versions: dict[str, datetime] = {}
        self._tasks = BackgroundTasks()
        self._synced_at: float | None = None  # monotonic time of the last successful sync

    async def start(self) -> None:
        fired = await self.service.catch_up(grace=self.grace)
        if fired:
            logger.info("missed schedule slots run at start-up", extra={"runs": fired})
        await self.sync()
        self.scheduler.add_job(self.sync, "interval", seconds=self.sync_seconds, id=SYNC_JOB)
        for job in self.periodic:
            self.scheduler.add_job(self._fire_periodic, job.cron, id=job.job_id, args=[job])
        self.scheduler.start()
        self.service.on_change = self._sync_soon

    def shutdown(self) -> None:
        self.service.on_change = lambda: None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._tasks.cancel()

    async def check(self) -> None:
        """Readiness: the scheduler runs and has read the schedules lately (every scheduling process fires;
        the state database lets one run per slot through, so no process leads)."""
        if not self.scheduler.running:
            raise SalesflowError("the scheduler is not running")
        if self._synced_at is None or time.monotonic() - self._synced_at > STALE_SYNCS * self.sync_seconds:
            raise SalesflowError("the schedules could not be read from the state database lately")

    async def sync(self) -> None:
        """One cron job per enabled schedule; a job is replaced only when its schedule changed, so a sync
        at a fire time never skips the slot."""
        enabled = {s.id: s for s in await self.service.schedules.enabled()}
        self._synced_at = time.monotonic()
        own = {SYNC_JOB, *(job.job_id for job in self.periodic)}
        for job in self.scheduler.get_jobs():
            if job.id not in own and job.id not in enabled:
                job.remove()
                self._versions.pop(job.id, None)
        for schedule in enabled.values():
            if self._versions.get(schedule.id) != schedule.updated_at:
                self.scheduler.add_job(
                    self._fire, trigger(schedule), id=schedule.id, args=[schedule.id], replace_existing=True
                )
                self._versions[schedule.id] = schedule.updated_at

    async def _fire(self, schedule_id: str) -> None:
        schedule = await self.service.schedules.get(schedule_id)
        if schedule is None:
            return
        # The slot this firing is for: the latest fire time up to now (every process computes the same).
        slot = last_fire_time(schedule, self.service.clock(), within=self.grace)
        if slot is not None:
            SCHEDULE_FIRINGS.labels("schedule").inc()
            await self.service.fire(schedule_id, slot)

    async def _fire_periodic(self, job: Periodic) -> None:
        slot = last_cron_fire_time(job.cron, job.zone, self.service.clock(), within=self.grace)
        if slot is not None:
            SCHEDULE_FIRINGS.labels("periodic").inc()
            await job.enqueue(slot)

    def _sync_soon(self) -> None:
        self._tasks.spawn(self.sync())
