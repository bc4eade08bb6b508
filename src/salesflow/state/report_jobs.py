"""Report job records: created queued, claimed by one worker at a time (a lease with an attempt number as its
fencing token), completed or failed once."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.models.reports import JobStatus
from salesflow.state.database import StateDatabase
from salesflow.state.tables import ReportJob


@dataclass(frozen=True)
class NewJob:
    owner: str
    owner_name: str
    scope: str
    report_type: str
    format: str
    period: str
    start_date: date | None = None
    end_date: date | None = None


def worker_id() -> str:
    """Who holds an attempt: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ReportJobs:
    """The repository of report jobs."""

    def __init__(self, db: StateDatabase, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    async def create(self, job: NewJob) -> ReportJob:
        row = await self._insert(job, schedule_id=None, fire_time=None)
        assert row is not None  # no unique slot to clash with
        return row

    async def create_scheduled(
        self, job: NewJob, *, schedule_id: str, fire_time: datetime
    ) -> ReportJob | None:
        """The run of a schedule's slot; None when that slot already has its run (a second scheduler fired
        it too): (schedule, fire time) is unique, so a double fire still yields one run."""
        return await self._insert(job, schedule_id=schedule_id, fire_time=fire_time)

    async def _insert(
        self, job: NewJob, *, schedule_id: str | None, fire_time: datetime | None
    ) -> ReportJob | None:
        row = ReportJob(
            id=uuid.uuid4().hex,  # 122 random bits: not guessable
            **job.__dict__,
            status=JobStatus.QUEUED,
            attempts=0,
            created_at=self.clock(),
            schedule_id=schedule_id,
            fire_time=fire_time,
        )
        try:
            async with self.db.session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            return None
        return row

    async def runs(self, schedule_id: str, *, limit: int) -> Sequence[ReportJob]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ReportJob)
                .where(ReportJob.schedule_id == schedule_id)
                .order_by(ReportJob.fire_time.desc())
                .limit(limit)
            )
            return [row for row in rows]

    async def has_run(self, schedule_id: str, fire_time: datetime) -> bool:
        async with self.db.session() as session:
            found = await session.scalar(
                select(ReportJob.id).where(
                    ReportJob.schedule_id == schedule_id, ReportJob.fire_time == fire_time
                )
            )
            return found is not None

    async def latest_scheduled(self, *, report_type: str, report_format: str) -> ReportJob | None:
        """The newest completed run of any schedule with this type and format."""
        async with self.db.session() as session:
            row = await session.scalar(
                select(ReportJob)
                .where(
                    ReportJob.schedule_id.is_not(None),
                    ReportJob.status == JobStatus.COMPLETED,
                    ReportJob.report_type == report_type,
                    ReportJob.format == report_format,
                )
                .order_by(ReportJob.finished_at.desc())
                .limit(1)
            )
            return row if row is not None else None

    async def get(self, job_id: str) -> ReportJob | None:
        async with self.db.session() as session:
            row = await session.get(ReportJob, job_id)
        return row if row is not None else None

    async def page(self, *, owner: str | None, offset: int, limit: int) -> tuple[list[ReportJob], int]:
        """Newest first; `owner=None`: everyone's."""
        query = select(ReportJob)
        count = select(func.count()).select_from(ReportJob)
        if owner is not None:
            query, count = query.where(ReportJob.owner == owner), count.where(ReportJob.owner == owner)
        query = query.order_by(ReportJob.created_at.desc(), ReportJob.id).offset(offset).limit(limit)
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
            total = int((await session.execute(count)).scalar_one())
        return [row for row in rows], total

    async def claim(self, job_id: str, *, lease_seconds: float, max_attempts: int) -> ReportJob | None:
        """Take the job for one attempt: queued, or generating with its lease expired (a worker died). None
        when another worker holds it, it is done, or it has no attempt left (then it is failed)."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            claimed = await session.execute(
                update(ReportJob)
                .where(
                    ReportJob.id == job_id,
                    ReportJob.attempts < max_attempts,
                    or_(
                        ReportJob.status == JobStatus.QUEUED,
                        (ReportJob.status == JobStatus.GENERATING) & (ReportJob.lease_until < now),
                    ),
                )
                .values(
                    status=JobStatus.GENERATING,
                    attempts=ReportJob.attempts + 1,
                    started_at=now,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    worker=worker_id(),
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                await self._fail_exhausted(session, job_id, max_attempts, now)
                return None
        return await self.get(job_id)

    async def renew(self, job_id: str, *, attempt: int, lease_seconds: float) -> bool:
        """Extend the attempt's lease (its heartbeat); False when that attempt no longer holds the job."""
        async with self.db.session() as session, session.begin():
            renewed = await session.execute(
                update(ReportJob)
                .where(
                    ReportJob.id == job_id,
                    ReportJob.attempts == attempt,
                    ReportJob.status == JobStatus.GENERATING,
                )
                .values(lease_until=self.clock() + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]

    async def complete(self, job_id: str, *, attempt: int, file_name: str) -> bool:
        """Mark the attempt's success; False when that attempt no longer holds the job."""
        return await self._finish(
            job_id, attempt, status=JobStatus.COMPLETED, file_name=file_name, error=None
        )

    async def note(self, job_id: str, *, attempt: int, error: str) -> None:
        """Record why an attempt did not finish; the job stays with it until its lease ends, then is taken
        again (or, out of attempts, fails with this reason)."""
        await self._update_attempt(job_id, attempt, error=error)

    async def fail(self, job_id: str, *, attempt: int, error: str) -> bool:
        return await self._finish(job_id, attempt, status=JobStatus.FAILED, file_name=None, error=error)

    async def release_held(self) -> list[str]:
        """Hand back the jobs this process holds (it is stopping): queued again, their interrupted attempts
        not counted. Returns their ids."""
        async with self.db.session() as session, session.begin():
            released = await session.scalars(
                update(ReportJob)
                .where(ReportJob.status == JobStatus.GENERATING, ReportJob.worker == worker_id())
                .values(
                    status=JobStatus.QUEUED,
                    attempts=ReportJob.attempts - 1,
                    lease_until=None,
                    worker=None,
                    enqueued_at=None,
                )
                .returning(ReportJob.id)
                .execution_options(synchronize_session=False)
            )
            return list(released)

    async def stale(self) -> Sequence[str]:
        """Jobs a dead worker left in `generating` past their lease."""
        return await self._ids(
            (ReportJob.status == JobStatus.GENERATING) & (ReportJob.lease_until < self.clock())
        )

    async def queued(self) -> Sequence[str]:
        """Jobs waiting for a worker, oldest first."""
        return await self._ids(ReportJob.status == JobStatus.QUEUED)

    async def unsent(self, *, older_than: timedelta, resend_after: timedelta) -> Sequence[str]:
        """Queued jobs whose message never reached the job queue (it was away), or was sent `resend_after`
        ago and not taken since (a Redis that restarted empty lost it), oldest first."""
        now = self.clock()
        return await self._ids(
            (ReportJob.status == JobStatus.QUEUED)
            & (ReportJob.created_at < now - older_than)
            & (ReportJob.enqueued_at.is_(None) | (ReportJob.enqueued_at < now - resend_after))
        )

    async def mark_sent(self, job_id: str) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(ReportJob)
                .where(ReportJob.id == job_id)
                .values(enqueued_at=self.clock())
                .execution_options(synchronize_session=False)
            )

    async def unfinished(self, *, owner: str) -> int:
        """The owner's own requests (not scheduled runs) still queued or generating."""
        waiting = ReportJob.status.in_((JobStatus.QUEUED, JobStatus.GENERATING)) & ReportJob.schedule_id.is_(
            None
        )
        query = select(func.count()).select_from(ReportJob).where((ReportJob.owner == owner) & waiting)
        async with self.db.session() as session:
            return int((await session.execute(query)).scalar_one())

    async def count_by_status(self) -> dict[str, int]:
        async with self.db.session() as session:
            rows = await session.execute(select(ReportJob.status, func.count()).group_by(ReportJob.status))
            return {str(status): int(count) for status, count in rows.all()}

    async def _ids(self, condition: ColumnElement[bool]) -> Sequence[str]:
        async with self.db.session() as session:
            rows = await session.scalars(select(ReportJob.id).where(condition).order_by(ReportJob.created_at))
            return list(rows)

    async def files_expired(self, moment: datetime, *, limit: int) -> Sequence[ReportJob]:
        """Completed jobs finished before `moment` whose file is still there, the oldest first."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ReportJob)
                .where(
                    ReportJob.status == JobStatus.COMPLETED,
                    ReportJob.finished_at < moment,
                    ReportJob.file_removed_at.is_(None),
                )
                .order_by(ReportJob.finished_at)
                .limit(limit)
            )
            return list(rows)

    async def mark_files_removed(self, job_ids: Sequence[str]) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(ReportJob).where(ReportJob.id.in_(job_ids)).values(file_removed_at=self.clock())
            )

    async def _finish(
        self, job_id: str, attempt: int, *, status: JobStatus, file_name: str | None, error: str | None
    ) -> bool:
        return await self._update_attempt(
            job_id, attempt, status=status, file_name=file_name, error=error, finished_at=self.clock()
        )

    async def _update_attempt(self, job_id: str, attempt: int, **values: object) -> bool:
        """Set `values` on the job if that attempt still holds it (the attempt number fences it)."""
        async with self.db.session() as session, session.begin():
            done = await session.execute(
                update(ReportJob)
                .where(
                    ReportJob.id == job_id,
                    ReportJob.status == JobStatus.GENERATING,
                    ReportJob.attempts == attempt,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    async def _fail_exhausted(
        self, session: AsyncSession, job_id: str, max_attempts: int, now: datetime
    ) -> None:
        await session.execute(
            update(ReportJob)
            .where(
                ReportJob.id == job_id,
                ReportJob.attempts >= max_attempts,
                or_(
                    ReportJob.status == JobStatus.QUEUED,
                    (ReportJob.status == JobStatus.GENERATING) & (ReportJob.lease_until < now),
                ),
            )
            .values(
                status=JobStatus.FAILED,
                finished_at=now,
                error=func.coalesce(
                    ReportJob.error, f"gave up after {max_attempts} attempts (the worker stopped each time)"
                ),
            )
            .execution_options(synchronize_session=False)
        )
