"""Reports pipeline (UC6): submit → (job runtime) → claim → gather → render → store → complete; then follow
and download. Stages, in order:

1. `submit`: the request is checked (its window resolved now, so a bad window is a 422, not a failed job),
   recorded `queued` in the state database, and handed to the job runtime (`enqueue`).
2. `run` (a worker, or the API process in the embedded shape): `claim` takes the job for one attempt under
   a lease; `gather` (content.py) reads the analytics and ML services; the file is rendered (pdf.py, xlsx.py)
   in a worker thread and written atomically (artifacts.py); `complete` records it — once, guarded by the
   attempt.
   A worker that dies leaves the job `generating`: past its lease it is claimed again (bounded attempts).
   A worker stopped past its grace hands its job back at once (`hand_back`: queued, the attempt not counted).
   A full `EXPORT_DIR` keeps the job for another attempt after the lease (its reason shown meanwhile).
3. `get` / `page` / `file`: only the owner or an ADMIN sees a job or its file; anyone else gets a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio

from salesflow.errors import NotFound, QueueUnavailable, SalesflowError, StorageFull, TooManyRequests
from salesflow.heartbeat import beating
from salesflow.models.analytics import Period, SalesQuery
from salesflow.models.auth import Role, User
from salesflow.models.reports import (
    JobOutcome,
    JobStatus,
    ReportFormat,
    ReportJobState,
    ReportRequest,
    ReportType,
)
from salesflow.services.analytics.windows import resolve_window
from salesflow.services.reports.artifacts import MEDIA_TYPES, ArtifactStore, download_name
from salesflow.services.reports.content import ReportContent, ReportGatherer
from salesflow.state.database import is_record_id
from salesflow.state.report_jobs import NewJob, ReportJobs
from salesflow.state.retention import PRUNE_BATCH
from salesflow.state.tables import ReportJob

logger = logging.getLogger(__name__)

UNSENT_AFTER = timedelta(seconds=5)  # a job younger than this may still be being sent by its submitter


# The renderers' libraries (ReportLab, matplotlib, XlsxWriter) load with the first report, not every process.
def render_pdf(content: ReportContent) -> bytes:
    from salesflow.services.reports import pdf

    return pdf.render_pdf(content)


def render_xlsx(content: ReportContent) -> bytes:
    from salesflow.services.reports import xlsx

    return xlsx.render_xlsx(content)


RENDERERS: dict[ReportFormat, Callable[[ReportContent], bytes]] = {
    ReportFormat.PDF: render_pdf,
    ReportFormat.EXCEL: render_xlsx,
}
RETRY_AFTER_BUSY_SECONDS = 15  # a report takes seconds: by then one of the caller's is likely ready
ALL_JOBS_ROLE = Role.ADMIN  # sees and downloads every user's reports


@dataclass(frozen=True)
class ReportFile:
    path: Path
    name: str
    media_type: str


class ReportService:
    def __init__(
        self,
        jobs: ReportJobs,
        gatherer: ReportGatherer,
        store: ArtifactStore,
        *,
        enqueue: Callable[[str], Awaitable[None]],
        business_tz: ZoneInfo,
        clock: Callable[[], datetime],
        max_window_days: int,
        lease_seconds: float,
        timeout_seconds: float,
        max_attempts: int,
        jobs_per_user: int = 5,
    ) -> None:
        self.jobs = jobs
        self.jobs_per_user = jobs_per_user
        self.gatherer = gatherer
        self.store = store
        self.enqueue = enqueue
        self.business_tz = business_tz
        self.clock = clock
        self.max_window_days = max_window_days
        self.lease_seconds = lease_seconds
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self._render = anyio.CapacityLimiter(1)  # rendering is CPU work: one at a time per process
        # What happens to a completed job next (the schedules' e-mail, with what the file shows); set by the
        # composition root.
        self.on_completed: Callable[[ReportJob, ReportContent], Awaitable[None]] = _nothing
        # And a failed one (the schedules tell their recipients).
        self.on_failed: Callable[[ReportJob], Awaitable[None]] = _nothing_failed

    async def submit(self, request: ReportRequest, *, user: User) -> ReportJob:
        query = _query(request.period, request.start_date, request.end_date)
        resolve_window(query, today=self._today(), max_days=self.max_window_days)  # 422 now, not later
        # One user's burst waits in their own browser, not in everyone's queue.
        unfinished = await self.jobs.unfinished(owner=user.subject)
        if unfinished >= self.jobs_per_user:
            raise TooManyRequests(
                f"You have {unfinished} report(s) waiting or being generated (at most {self.jobs_per_user} at"
                " once); try again when one is ready",
                retry_after=RETRY_AFTER_BUSY_SECONDS,
            )
        job = await self.jobs.create(
            NewJob(
                owner=user.subject,
                owner_name=user.username,
                scope=user.scope,
                report_type=request.report_type,
                format=request.format,
                period=request.period,
                start_date=request.start_date,
                end_date=request.end_date,
            )
        )
        await self.send(job.id)
        return job

    async def send(self, job_id: str) -> bool:
        """Hand a queued job to the job runtime; when the queue is away, the job stays queued in the state
        database and the sweep sends it once the queue is back (`send_unsent`)."""
        try:
            await self.enqueue(job_id)
        except QueueUnavailable:
            logger.warning("job queue unavailable; the sweep will send the job", extra={"job_id": job_id})
            return False
        await self.jobs.mark_sent(job_id)
        return True

    async def send_unsent(self) -> int:
        """Send the queued jobs whose message never reached the queue, or was lost with it (sent a lease
        ago and not taken: a job sent twice still runs once); how many were sent."""
        resend_after = timedelta(seconds=self.timeout_seconds)
        return await self._send_all(
            await self.jobs.unsent(older_than=UNSENT_AFTER, resend_after=resend_after)
        )

    async def _send_all(self, job_ids: Sequence[str]) -> int:
        """Send each job, oldest first; stops at the first the queue refuses (the sweep tries again)."""
        sent = 0
        for job_id in job_ids:
            if not await self.send(job_id):
                break
            sent += 1
        return sent

    async def run(self, job_id: str) -> JobOutcome:
        """One attempt at a job (what the runtime's task does); a no-op when another attempt holds it."""
        job = await self.jobs.claim(job_id, lease_seconds=self.lease_seconds, max_attempts=self.max_attempts)
        if job is None:  # another attempt holds it, it is done, or it just ran out of attempts
            await self._notify_if_failed(job_id)
            return JobOutcome.SKIPPED
        report_format = ReportFormat(job.format)
        generated_at = self.clock().astimezone(self.business_tz)
        try:
            async with self._holding(job):
                with anyio.fail_after(self.timeout_seconds):
                    content = await self.gatherer.gather(
                        ReportType(job.report_type),
                        _query(Period(job.period), job.start_date, job.end_date),
                        scope=job.scope,
                        generated_at=generated_at,
                    )
                    data = await anyio.to_thread.run_sync(
                        RENDERERS[report_format], content, limiter=self._render
                    )
                    await anyio.to_thread.run_sync(self.store.write, job.id, report_format, data)
        except TimeoutError:
            return await self._fail(
                job, f"the report took longer than {self.timeout_seconds:.0f} s, the most an attempt may"
            )
        except StorageFull as exc:  # the operator can free space: this attempt's lease ends, then another
            logger.error("report not written: the export folder is full", extra={"job_id": job.id})
            await self.jobs.note(job.id, attempt=job.attempts, error=f"{exc.detail}; it will be tried again")
            return JobOutcome.DEFERRED
        except SalesflowError as exc:
            return await self._fail(job, exc.detail)
        except Exception as exc:  # the job fails with a reason; the traceback goes to the log
            logger.exception("report generation failed", extra={"job_id": job.id})
            return await self._fail(job, f"the report could not be generated ({type(exc).__name__})")
        window = f"{job.start_date}_{job.end_date}" if job.start_date and job.end_date else job.period
        name = download_name(job.report_type, window, report_format, generated_at)
        if not await self.jobs.complete(job.id, attempt=job.attempts, file_name=name):
            logger.warning("a later attempt took this job over", extra={"job_id": job.id})
            return JobOutcome.SKIPPED
        completed = await self.jobs.get(job.id)
        if completed is not None:
            await self.on_completed(completed, content)
        return JobOutcome.SUCCEEDED

    async def _fail(self, job: ReportJob, error: str) -> JobOutcome:
        await self.jobs.fail(job.id, attempt=job.attempts, error=error)
        await self._notify_if_failed(job.id)
        return JobOutcome.FAILED

    async def _notify_if_failed(self, job_id: str) -> None:
        """Tell of a failed job (`on_failed` keys its message by the job: told once however often asked)."""
        failed = await self.jobs.get(job_id)
        if failed is None or failed.status != JobStatus.FAILED:
            return
        try:
            await self.on_failed(failed)
        except Exception:  # the failure is recorded; telling someone is best effort
            logger.exception("report failure not notified", extra={"job_id": job_id})

    def _holding(self, job: ReportJob) -> AbstractAsyncContextManager[None]:
        """Renew the attempt's short lease while it runs (a heartbeat): a live worker keeps its job however
        long it takes, and a dead one's job is taken again once `lease_seconds` pass without a beat."""

        async def renew() -> bool:
            try:  # False: a later attempt took the job over (its `complete` will refuse this one)
                return await self.jobs.renew(job.id, attempt=job.attempts, lease_seconds=self.lease_seconds)
            except Exception:  # the state database blinked: the next beat tries again
                logger.warning("report job lease not renewed", extra={"job_id": job.id}, exc_info=True)
                return True

        return beating(renew, self.lease_seconds / 3)

    async def get(self, job_id: str, *, user: User) -> ReportJob:
        job = await self.jobs.get(job_id) if is_record_id(job_id) else None
        if job is None or not (job.owner == user.subject or user.has_any_role(ALL_JOBS_ROLE)):
            raise NotFound(f"No report job {job_id[:64]!r}")
        return job

    async def page(self, *, user: User, offset: int, limit: int) -> tuple[list[ReportJob], int]:
        owner = None if user.has_any_role(ALL_JOBS_ROLE) else user.subject
        return await self.jobs.page(owner=owner, offset=offset, limit=limit)

    async def file(self, job_id: str, *, user: User) -> ReportFile:
        job = await self.get(job_id, user=user)
        report_format = ReportFormat(job.format)
        path = self.store.path(job.id, report_format)
        if job.status != JobStatus.COMPLETED or job.file_name is None:
            raise NotFound(f"Report job {job_id!r} has no file yet (status: {job.status})")
        if job.file_removed_at is not None or not path.exists():
            raise NotFound(f"The file of report job {job_id!r} was removed after its retention period")
        return ReportFile(path=path, name=job.file_name, media_type=MEDIA_TYPES[report_format])

    async def wait(self, job_id: str) -> ReportJob:
        """The job once it is completed or failed (polled: the state database has no event to await); the
        caller bounds the wait (`anyio.fail_after`)."""
        while True:
            job = await self.jobs.get(job_id)
            if job is not None and job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
                return job
            await anyio.sleep(0.1)

    async def hand_back(self, *, requeue: bool) -> int:
        """The jobs this process was running when it stopped: queued again at once (not after their lease),
        their interrupted attempts not counted; `requeue` sends them to the shared queue as well (with the
        in-process broker, the next start takes them from the state database)."""
        released = await self.jobs.release_held()
        if requeue:
            await self._send_all(released)
        if released:
            logger.info("report jobs handed back", extra={"job_ids": released})
        return len(released)

    async def requeue_queued(self) -> int:
        """Enqueue every queued job again: with the in-process broker, jobs queued when the last process
        stopped are only in the state database; with Redis, after it restarted empty (a job enqueued twice
        still runs once)."""
        return await self._send_all(await self.jobs.queued())

    async def requeue_stale(self) -> int:
        """Hand jobs whose worker died (lease expired) back to the runtime; `run` decides what to do."""
        return await self._send_all(await self.jobs.stale())

    async def remove_expired(self, *, retention_days: int, limit: int = PRUNE_BATCH) -> int:
        """Remove the files of up to `limit` jobs past retention (each job's once: it is marked)."""
        before = self.clock() - timedelta(days=retention_days)
        expired = await self.jobs.files_expired(before, limit=limit)

        def remove_all() -> int:  # one trip to a thread for the batch, not one per file
            return sum(self.store.remove(job.id, ReportFormat(job.format)) for job in expired)

        removed = await anyio.to_thread.run_sync(remove_all)
        if expired:
            await self.jobs.mark_files_removed([job.id for job in expired])
        return removed

    def _today(self) -> datetime:
        return self.clock().astimezone(self.business_tz)


async def _nothing(job: ReportJob, content: ReportContent) -> None:
    return None


async def _nothing_failed(job: ReportJob) -> None:
    return None


def _query(period: Period, start: object, end: object) -> SalesQuery:
    return SalesQuery(period=period, start_date=start, end_date=end)


def job_state(job: ReportJob, download_path: Callable[[str], str]) -> ReportJobState:
    """A job as the API shows it; `download_path(job_id)` once it is completed."""
    done = job.status == JobStatus.COMPLETED
    return ReportJobState(
        job_id=job.id,
        status=JobStatus(job.status),
        report_type=ReportType(job.report_type),
        format=ReportFormat(job.format),
        period=Period(job.period),
        start_date=job.start_date,
        end_date=job.end_date,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        attempts=job.attempts,
        worker=job.worker,
        owner=job.owner_name,
        file_name=job.file_name,
        download_url=download_path(job.id) if done else None,
    )
