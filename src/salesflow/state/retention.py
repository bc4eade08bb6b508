"""Retention of the state database: records past `STATE_RETENTION_DAYS` go, a bounded batch per table a pass.

Kept for good: schedules, open and acknowledged alerts, mail not yet sent. Pruned once older than the
retention: sent or failed mail, finished alert checks, resolved alerts, failed report jobs and completed ones
whose file is gone (`REPORT_RETENTION_DAYS`, the report sweep: a row never goes before its file). Imports go
after their own week, demand batches after a week. Scored forecasts go after `FORECAST_ACCURACY_DAYS`, the
oldest day of them a pass (a day is one row per product).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute

from salesflow.models.alerts import AlertState, MailStatus
from salesflow.models.reports import JobStatus
from salesflow.state.database import StateDatabase
from salesflow.state.tables import Alert, AlertCheck, ForecastScore, OutgoingMail, ReportJob

PRUNE_BATCH = 500  # rows per table a pass: a backlog of years goes over several sweeps, never in one


def _past(before: datetime) -> dict[str, tuple[InstrumentedAttribute[str], ColumnElement[bool]]]:
    return {
        OutgoingMail.__tablename__: (
            OutgoingMail.id,
            OutgoingMail.status.in_((MailStatus.SENT, MailStatus.FAILED))
            & (OutgoingMail.created_at < before),
        ),
        AlertCheck.__tablename__: (
            AlertCheck.id,
            AlertCheck.finished_at.is_not(None) & (AlertCheck.started_at < before),
        ),
        Alert.__tablename__: (Alert.id, (Alert.state == AlertState.RESOLVED) & (Alert.resolved_at < before)),
        ReportJob.__tablename__: (
            ReportJob.id,
            (ReportJob.finished_at < before)
            & (
                (ReportJob.status == JobStatus.FAILED)
                | ((ReportJob.status == JobStatus.COMPLETED) & ReportJob.file_removed_at.is_not(None))
            ),
        ),
    }


async def prune(
    db: StateDatabase, *, before: datetime, forecasts_before: date | None = None, batch: int = PRUNE_BATCH
) -> dict[str, int]:
    """Delete up to `batch` rows past retention from each table (forecasts: the oldest day made before
    `forecasts_before`); how many went, per table."""
    removed: dict[str, int] = {}
    if forecasts_before is not None:
        removed[ForecastScore.__tablename__] = await _prune_oldest_forecasts(db, forecasts_before)
    for table, (key, past) in _past(before).items():
        doomed = select(key).where(past).limit(batch).scalar_subquery()
        async with db.session() as session, session.begin():
            result = await session.execute(
                delete(key.class_).where(key.in_(doomed)).execution_options(synchronize_session=False)
            )
        removed[table] = int(result.rowcount)  # type: ignore[attr-defined]
    return removed


async def _prune_oldest_forecasts(db: StateDatabase, before: date) -> int:
    async with db.session() as session, session.begin():
        oldest = await session.scalar(select(func.min(ForecastScore.as_of)))
        if oldest is None or oldest >= before:
            return 0
        result = await session.execute(
            delete(ForecastScore)
            .where(ForecastScore.as_of == oldest)
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
