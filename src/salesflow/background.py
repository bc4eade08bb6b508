"""Every periodic and background task of a process, which process kind runs it, started and stopped as one
`async with`.

    async with open_resources(settings) as resources, running_background(resources, ProcessKind.API):
        ...  # serve

`BACKGROUND` is the one list to read (README "Processes"); each entry opens as an async context manager in
the list's order and closes in reverse. Periodic work runs through `repeat`: a failed round is logged and
tried again at the next one, so one bad round never stops a loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from apscheduler.triggers.cron import CronTrigger

from salesflow.config import Settings
from salesflow.heartbeat import as_task
from salesflow.integration.java_demo_server import java_demo
from salesflow.jobs.runtime import CHECK_ALERTS
from salesflow.jobs.scheduler import Periodic, ScheduleRunner
from salesflow.observability import watch_event_loop
from salesflow.resources import Resources
from salesflow.services.alerting.pipeline import SCHEDULED, STARTUP
from salesflow.services.ml.demand_forecasts import CHECK_EVERY_SECONDS
from salesflow.state.retention import prune

logger = logging.getLogger(__name__)


class ProcessKind(StrEnum):
    API = "api"  # `salesflow serve` (and the app in tests)
    WORKER = "worker"  # `salesflow worker`: runs queued jobs


async def repeat(step: Callable[[], Awaitable[object]], *, every_seconds: float, what: str) -> None:
    """Run `step`, then again `every_seconds` after each round ends, until cancelled."""
    while True:
        try:
            await step()
        except Exception:  # retried at the next round
            logger.warning("%s failed", what, exc_info=True)
        await anyio.sleep(every_seconds)


Opener = Callable[[Resources], AbstractAsyncContextManager[object]]


@dataclass(frozen=True)
class Background:
    """One piece of background work; `switch` is the environment name of the boolean setting that turns it on
    (None: always on)."""

    name: str
    runs_in: frozenset[ProcessKind]
    switch: str | None
    open: Opener

    def enabled(self, settings: Settings) -> bool:
        return self.switch is None or bool(settings.value(self.switch))

    @classmethod
    def task(
        cls,
        name: str,
        runs_in: frozenset[ProcessKind],
        switch: str | None,
        work: Callable[[Resources], Coroutine[Any, Any, None]],
    ) -> Background:
        """`work` runs once, as a task, beside the process's own work."""
        return cls(name, runs_in, switch, lambda resources: as_task(work(resources)))

    @classmethod
    def periodic(
        cls,
        name: str,
        runs_in: frozenset[ProcessKind],
        switch: str | None,
        step: Callable[[Resources], Awaitable[object]],
        every_seconds: Callable[[Settings], float],
    ) -> Background:
        """`step` every `every_seconds` (through `repeat`)."""

        def work(resources: Resources) -> Coroutine[Any, Any, None]:
            seconds = every_seconds(resources.settings)
            return repeat(lambda: step(resources), every_seconds=seconds, what=name)

        return cls.task(name, runs_in, switch, work)


def _java_demo(resources: Resources) -> AbstractAsyncContextManager[object]:
    if resources.store is None or not resources.settings.java.demo_port:  # only the demo store can back it
        return nullcontext()
    return java_demo(resources.store, resources.settings, resources.lines.clock)


async def _warm_up(resources: Resources) -> None:
    """Compile the forecasting models: the first forecast must not pay for it."""
    try:
        seconds = await resources.forecasts.warm_up()
    except Exception:  # a failed warm-up only means a slower first forecast
        logger.warning("forecast warm-up failed", exc_info=True)
        return
    logger.info("forecast models warmed up", extra={"seconds": round(seconds, 2)})


async def _start_parsers(resources: Resources) -> None:
    try:
        await resources.imports.sandbox.start()
    except Exception:  # only means a slower first upload
        logger.warning("upload parsers' warm-up failed", exc_info=True)


@asynccontextmanager
async def _queued_jobs_sent_again(resources: Resources) -> AsyncIterator[None]:
    """The in-process queue died with the last process; a Redis queue may have been lost with its data."""
    jobs = resources.jobs
    if not jobs.distributed or await jobs.declare_queue():
        await resources.reports.requeue_queued()
    yield


async def sweep_once(resources: Resources) -> tuple[int, int]:
    """Jobs (and messages) whose worker died go back to the runtime, jobs queued while the job queue was away
    are sent to it, report files past retention go away, and so do state records past theirs (a bounded batch
    a pass: `state/retention.py`). Every process sweeps: a job handed back twice is still run once (its claim
    is conditional), and removing a removed file is a no-op. (jobs requeued, files removed)"""
    requeued = (
        await resources.jobs.hand_back_dead_consumers()
        + await resources.reports.requeue_stale()
        + await resources.reports.send_unsent()
    )
    settings = resources.settings
    removed = await resources.reports.remove_expired(retention_days=settings.reports.retention_days)
    past = resources.reports.clock() - timedelta(days=settings.storage.retention_days)
    forecasts_before = resources.lines.today() - timedelta(days=settings.forecasting.accuracy_days)
    pruned = await prune(resources.state, before=past, forecasts_before=forecasts_before)
    if requeued or removed or any(pruned.values()):
        logger.info("job sweep", extra={"requeued": requeued, "files_removed": removed, "pruned": pruned})
    return requeued, removed


def alert_checks(resources: Resources) -> Periodic:
    """The alert rules evaluated on `ALERT_CHECK_CRON` (in BUSINESS_TZ), on the job runtime."""
    zone = ZoneInfo(resources.settings.shop.business_tz)

    async def enqueue(slot: datetime) -> None:
        await resources.jobs.enqueue_alert_check(SCHEDULED, slot)

    return Periodic(
        job_id=CHECK_ALERTS,
        cron=CronTrigger.from_crontab(resources.settings.alerts.check_cron, timezone=zone),
        zone=zone,
        enqueue=enqueue,
    )


@asynccontextmanager
async def _scheduling(resources: Resources) -> AsyncIterator[None]:
    """Report schedules and the alert checks' cron (APScheduler); one alert check at start."""
    settings = resources.settings
    runner = ScheduleRunner(
        resources.schedules,
        sync_seconds=settings.reports.schedule_sync_seconds,
        grace_seconds=settings.reports.schedule_grace_seconds,
        periodic=[alert_checks(resources)],
    )
    await runner.start()
    resources.scheduler = runner.check
    try:
        await resources.jobs.enqueue_alert_check(STARTUP)
        yield
    finally:
        resources.scheduler = None
        runner.shutdown()


API = frozenset({ProcessKind.API})
EVERY_PROCESS = frozenset(ProcessKind)

BACKGROUND: tuple[Background, ...] = (
    Background.task("event-loop watch", EVERY_PROCESS, None, lambda r: watch_event_loop()),
    Background("DEV demo Java API on DEV_JAVA_PORT", API, "DEV_MODE", _java_demo),
    Background.task("forecast models' warm-up", API, "FORECAST_WARM_UP", _warm_up),
    Background.task("upload parsers' start", API, "IMPORT_WARM_UP", _start_parsers),
    Background.periodic(
        "demand batch and forecast scoring",
        API,
        "DEMAND_FORECASTS",
        lambda r: r.demand_forecasts.check(),
        lambda s: CHECK_EVERY_SECONDS,
    ),
    Background("queued jobs sent again at start", API, None, _queued_jobs_sent_again),
    # Workers sweep too: a dead worker's jobs and messages are handed back by whoever notices first.
    Background.periodic(
        "job sweep and retention", EVERY_PROCESS, None, sweep_once, lambda s: s.jobs.sweep_seconds
    ),
    Background.periodic(
        "e-mail delivery",
        API,
        None,
        lambda r: r.notifications.deliver_due(),
        lambda s: s.mail.delivery_seconds,
    ),
    Background("scheduler: report schedules, alert checks", API, "SCHEDULER_ENABLED", _scheduling),
)


@asynccontextmanager
async def running_background(resources: Resources, kind: ProcessKind) -> AsyncIterator[None]:
    """Every `BACKGROUND` entry of `kind` that its settings enable, while the block runs."""
    async with AsyncExitStack() as stack:
        for entry in BACKGROUND:
            if kind in entry.runs_in and entry.enabled(resources.settings):
                await stack.enter_async_context(entry.open(resources))
        yield
