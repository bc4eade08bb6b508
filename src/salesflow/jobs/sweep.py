"""The periodic sweep: jobs (and messages) whose worker died go back to the runtime, jobs queued while the job
queue was away are sent to it, report files past retention go away, and so do state records past theirs (a
bounded batch a pass: `state/retention.py`).

Every API process sweeps every `JOB_SWEEP_SECONDS`; a job handed back twice is still run once (its claim is
conditional), and removing a removed file is a no-op. (APScheduler takes this over with the schedules.)
"""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio

from salesflow.resources import Resources
from salesflow.state.retention import prune

logger = logging.getLogger(__name__)


async def sweep_once(resources: Resources) -> tuple[int, int]:
    requeued = (
        await resources.jobs.hand_back_dead_consumers()
        + await resources.reports.requeue_stale()
        + await resources.reports.send_unsent()
    )
    settings = resources.settings
    removed = await resources.reports.remove_expired(retention_days=settings.report_retention_days)
    past = resources.reports.clock() - timedelta(days=settings.state_retention_days)
    forecasts_before = resources.lines.today() - timedelta(days=settings.forecast_accuracy_days)
    pruned = await prune(resources.state, before=past, forecasts_before=forecasts_before)
    if requeued or removed or any(pruned.values()):
        logger.info("job sweep", extra={"requeued": requeued, "files_removed": removed, "pruned": pruned})
    return requeued, removed


async def sweep_jobs(resources: Resources) -> None:
    while True:
        try:
            await sweep_once(resources)
        except Exception:  # a failed sweep is retried at the next period
            logger.warning("job sweep failed", exc_info=True)
        await anyio.sleep(resources.settings.job_sweep_seconds)
