"""Report schedules: the repository."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from salesflow.state.database import StateDatabase
from salesflow.state.tables import ReportSchedule


class Schedules:
    def __init__(self, db: StateDatabase, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    async def create(self, **fields: Any) -> ReportSchedule:
        now = self.clock()
        row = ReportSchedule(id=uuid.uuid4().hex, created_at=now, updated_at=now, **fields)
        async with self.db.session() as session, session.begin():
            session.add(row)
        return row

    async def find(self, **fields: Any) -> ReportSchedule | None:
        """The oldest schedule with exactly these values (JSON fields compared as given)."""
        query = select(ReportSchedule).order_by(ReportSchedule.created_at, ReportSchedule.id)
        for name, value in fields.items():
            if not isinstance(value, list | dict):
                query = query.where(getattr(ReportSchedule, name) == value)
        async with self.db.session() as session:
            for row in await session.scalars(query):
                if all(getattr(row, name) == value for name, value in fields.items()):
                    return row
        return None

    async def get(self, schedule_id: str) -> ReportSchedule | None:
        async with self.db.session() as session:
            row = await session.get(ReportSchedule, schedule_id)
        return row if row is not None else None

    async def update(self, schedule_id: str, **fields: Any) -> ReportSchedule | None:
        async with self.db.session() as session, session.begin():
            row = await session.get(ReportSchedule, schedule_id)
            if row is None:
                return None
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = self.clock()
        return row

    async def delete(self, schedule_id: str) -> bool:
        async with self.db.session() as session, session.begin():
            result = await session.execute(delete(ReportSchedule).where(ReportSchedule.id == schedule_id))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def page(self, *, offset: int = 0, limit: int = 200) -> tuple[Sequence[ReportSchedule], int]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ReportSchedule)
                .order_by(ReportSchedule.created_at, ReportSchedule.id)
                .offset(offset)
                .limit(limit)
            )
            total = (await session.execute(select(func.count()).select_from(ReportSchedule))).scalar_one()
            return [r for r in rows], int(total)

    async def enabled(self) -> Sequence[ReportSchedule]:
        async with self.db.session() as session:
            rows = await session.scalars(select(ReportSchedule).where(ReportSchedule.enabled.is_(True)))
            return [r for r in rows]
