"""Records past retention leave the state database in bounded batches; what is still needed stays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import select

from salesflow.state.database import StateDatabase
from salesflow.state.retention import prune
from salesflow.state.tables import Alert, AlertCheck, OutgoingMail, ReportJob

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=10)
BEFORE = NOW - timedelta(days=90)


@pytest.fixture
async def database(state_url: str) -> AsyncIterator[StateDatabase]:
    async with StateDatabase.open(state_url) as db:
        await db.migrate()
        yield db


def mail(status: str, created_at: datetime) -> OutgoingMail:
    key = uuid4().hex
    return OutgoingMail(
        id=key,
        recipients=["boss@shop.test"],
        subject="s",
        body="b",
        status=status,
        attempts=1,
        next_attempt_at=created_at,
        created_at=created_at,
        dedupe_key=key,
    )


def check(started_at: datetime, *, finished: bool) -> AlertCheck:
    return AlertCheck(
        id=uuid4().hex, trigger="manual", started_at=started_at, finished_at=started_at if finished else None
    )


def alert(state: str, seen: datetime) -> Alert:
    return Alert(
        id=uuid4().hex,
        kind="LOW_STOCK",
        subject=f"product:{uuid4().int % 10**6}",
        severity="low",
        state=state,
        message="m",
        numbers={},
        first_seen=seen,
        last_seen=seen,
        resolved_at=seen if state == "resolved" else None,
        at_stake=0.0,
    )


def report_job(status: str, finished_at: datetime | None, *, file_removed: bool = False) -> ReportJob:
    return ReportJob(
        id=uuid4().hex,
        owner="boss",
        owner_name="Boss",
        scope="all",
        report_type="stock",
        format="pdf",
        period="daily",
        status=status,
        created_at=finished_at or OLD,
        finished_at=finished_at,
        file_removed_at=finished_at if file_removed else None,
    )


async def test_old_finished_records_go_in_batches_and_the_rest_stays(database: StateDatabase) -> None:
    doomed: list[OutgoingMail | AlertCheck | Alert | ReportJob] = [
        mail("sent", OLD),
        mail("sent", OLD),
        mail("failed", OLD),
    ]
    doomed.extend(check(OLD, finished=True) for _ in range(3))
    doomed.extend(alert("resolved", OLD) for _ in range(3))
    doomed.extend([report_job("failed", OLD), report_job("completed", OLD, file_removed=True)])
    kept: list[OutgoingMail | AlertCheck | Alert | ReportJob] = [mail("pending", OLD), mail("sent", RECENT)]
    kept.extend([check(OLD, finished=False), check(RECENT, finished=True)])
    kept.extend([alert("open", OLD), alert("acknowledged", OLD), alert("resolved", RECENT)])
    # A completed job's row never goes before its file; unfinished jobs stay.
    kept.extend([report_job("completed", OLD), report_job("failed", RECENT), report_job("queued", None)])
    async with database.session() as session, session.begin():
        session.add_all([*doomed, *kept])
    first = await prune(database, before=BEFORE, batch=2)
    assert first == {
        "mail_outbox": 2,
        "alert_checks": 2,
        "alerts": 2,
        "report_jobs": 2,
    }  # bounded work per pass
    passes = [first]
    while any(passes[-1].values()):
        passes.append(await prune(database, before=BEFORE, batch=2))
    assert sum(sum(p.values()) for p in passes) == len(doomed)
    async with database.session() as session:
        left = set(await session.scalars(select(OutgoingMail.id)))
        left |= set(await session.scalars(select(AlertCheck.id)))
        left |= set(await session.scalars(select(Alert.id)))
        left |= set(await session.scalars(select(ReportJob.id)))
    assert left == {row.id for row in kept}
