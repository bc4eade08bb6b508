"""Imports under review, kept in the state database until they expire (a Redis restart loses none)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from salesflow.models.excel import ImportStatus
from salesflow.state.database import StateDatabase
from salesflow.state.tables import SalesImport


class ImportStore:
    def __init__(self, db: StateDatabase, *, clock: Callable[[], datetime], keep_days: int = 7) -> None:
        self.db = db
        self.clock = clock
        self.keep = timedelta(days=keep_days)

    async def add(self, record: dict[str, Any], rows: bytes) -> None:
        """A new import (its record and rows); imports past their time are dropped on the way."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            await session.execute(delete(SalesImport).where(SalesImport.expires_at <= now))
            session.add(
                SalesImport(
                    id=record["import_id"],
                    owner=record["owner"],
                    sha256=record["sha256"],
                    status=record["status"],
                    record=record,
                    rows=rows,
                    created_at=now,
                    expires_at=now + self.keep,
                )
            )

    async def update(self, record: dict[str, Any]) -> None:
        """Keep a changed record (status, batches written); the import lives `keep_days` from now."""
        async with self.db.session() as session, session.begin():
            row = await session.get(SalesImport, record["import_id"])
            if row is None:
                return
            row.record = dict(record)
            row.status = record["status"]
            row.expires_at = self.clock() + self.keep

    async def record(self, import_id: str) -> dict[str, Any] | None:
        async with self.db.session() as session:
            found = await session.scalar(
                select(SalesImport.record).where(
                    SalesImport.id == import_id, SalesImport.expires_at > self.clock()
                )
            )
        return dict(found) if found is not None else None

    async def rows(self, import_id: str) -> bytes | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(SalesImport.rows).where(
                    SalesImport.id == import_id, SalesImport.expires_at > self.clock()
                )
            )

    async def recent(self, *, owner: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest imports first: one owner's, or everyone's (`owner` None)."""
        query = select(SalesImport.record).where(SalesImport.expires_at > self.clock())
        if owner is not None:
            query = query.where(SalesImport.owner == owner)
        async with self.db.session() as session:
            found = await session.scalars(query.order_by(SalesImport.created_at.desc()).limit(limit))
            return [dict(record) for record in found]

    async def committed(self, *, owner: str, sha256: str) -> str | None:
        """The import of the same file by the same owner that was written completely, if any."""
        async with self.db.session() as session:
            return await session.scalar(
                select(SalesImport.id)
                .where(
                    SalesImport.owner == owner,
                    SalesImport.sha256 == sha256,
                    SalesImport.status == ImportStatus.COMPLETED,
                    SalesImport.expires_at > self.clock(),
                )
                .order_by(SalesImport.created_at.desc())
                .limit(1)
            )
