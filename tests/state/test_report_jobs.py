"""Report job records on SQLite and PostgreSQL: migrations, one claim at a time, one completion, leases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from salesflow.errors import StateUnavailable
from salesflow.models.reports import JobStatus
from salesflow.state.database import StateDatabase
from salesflow.state.report_jobs import NewJob, ReportJobs

START = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)
JOB = NewJob(
    owner="0600000001", owner_name="clerk", scope="user", report_type="sales", format="pdf", period="weekly"
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def database(state_url: str) -> AsyncIterator[StateDatabase]:
    async with StateDatabase.open(state_url) as db:
        await db.migrate()
        await db.migrate()  # a second process starting finds the schema current
        yield db


async def test_a_job_is_claimed_once_and_completed_once(database: StateDatabase) -> None:
    jobs = ReportJobs(database, clock=Clock())
    job = await jobs.create(JOB)
    assert job.status == JobStatus.QUEUED and len(job.id) == 32 and job.created_at == START
    first = await jobs.claim(job.id, lease_seconds=60, max_attempts=3)
    assert first is not None and first.status == JobStatus.GENERATING and first.attempts == 1
    assert await jobs.claim(job.id, lease_seconds=60, max_attempts=3) is None  # held by the first
    assert await jobs.complete(job.id, attempt=1, file_name="a.pdf")
    assert not await jobs.complete(job.id, attempt=1, file_name="b.pdf")  # never two completions
    done = await jobs.get(job.id)
    assert done is not None and done.status == JobStatus.COMPLETED and done.file_name == "a.pdf"
    assert await jobs.claim(job.id, lease_seconds=60, max_attempts=3) is None


async def test_an_expired_lease_is_claimed_again_and_fences_the_old_attempt(database: StateDatabase) -> None:
    clock = Clock()
    jobs = ReportJobs(database, clock=clock)
    job = await jobs.create(JOB)
    assert await jobs.claim(job.id, lease_seconds=60, max_attempts=3) is not None
    clock.now += timedelta(seconds=61)  # the first worker died
    assert await jobs.stale() == [job.id]
    second = await jobs.claim(job.id, lease_seconds=60, max_attempts=3)
    assert second is not None and second.attempts == 2
    assert not await jobs.complete(job.id, attempt=1, file_name="late.pdf")  # the dead attempt is fenced
    assert await jobs.complete(job.id, attempt=2, file_name="ok.pdf")


async def test_a_job_out_of_attempts_fails_with_the_reason(database: StateDatabase) -> None:
    clock = Clock()
    jobs = ReportJobs(database, clock=clock)
    job = await jobs.create(JOB)
    for _ in range(2):
        assert await jobs.claim(job.id, lease_seconds=60, max_attempts=2) is not None
        clock.now += timedelta(seconds=61)
    assert await jobs.claim(job.id, lease_seconds=60, max_attempts=2) is None
    failed = await jobs.get(job.id)
    assert failed is not None and failed.status == JobStatus.FAILED
    assert failed.error is not None and "after 2 attempts" in failed.error


async def test_pages_are_newest_first_and_per_owner(database: StateDatabase) -> None:
    clock = Clock()
    jobs = ReportJobs(database, clock=clock)
    ids = []
    for owner in ("a", "b", "a"):
        ids.append((await jobs.create(NewJob(**{**JOB.__dict__, "owner": owner}))).id)
        clock.now += timedelta(minutes=1)
    everyone, total = await jobs.page(owner=None, offset=0, limit=2)
    assert total == 3 and [j.id for j in everyone] == [ids[2], ids[1]]
    mine, total = await jobs.page(owner="a", offset=0, limit=10)
    assert total == 2 and [j.id for j in mine] == [ids[2], ids[0]]


async def test_a_database_that_cannot_be_reached_is_state_unavailable() -> None:
    """Nothing listens on port 1 of loopback: a clean `StateUnavailable` (503), not a driver error."""
    async with StateDatabase.open("postgresql+asyncpg://salesflow@127.0.0.1:1/nothing") as db:
        with pytest.raises(StateUnavailable, match="the state database is unavailable"):
            await ReportJobs(db, clock=Clock()).get("0" * 32)


async def test_a_second_run_of_a_slot_is_still_refused_by_its_constraint(database: StateDatabase) -> None:
    jobs = ReportJobs(database, clock=Clock())
    assert await jobs.create_scheduled(JOB, schedule_id="s" * 32, fire_time=START) is not None
    assert await jobs.create_scheduled(JOB, schedule_id="s" * 32, fire_time=START) is None
