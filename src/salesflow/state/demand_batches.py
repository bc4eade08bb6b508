"""The day's demand-forecast batches in the state database: written once a day by whoever computed the batch,
read to settle each business day's demand (the newest batch completed before the day began)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from salesflow.state.database import StateDatabase
from salesflow.state.tables import DemandBatch

KEPT_DAYS = 8  # a week of batches: a day may settle on one up to a week old


class DemandBatches:
    def __init__(self, db: StateDatabase, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    async def save(self, as_of: date, figures: dict[int, float]) -> None:
        """Keep the batch of `as_of` (the first one written wins: the figures are the same) and prune."""
        row = DemandBatch(
            as_of=as_of, computed_at=self.clock(), figures={str(k): v for k, v in figures.items()}
        )
        try:
            async with self.db.session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            pass  # another process kept the same day's batch first
        async with self.db.session() as session, session.begin():
            await session.execute(
                delete(DemandBatch).where(DemandBatch.as_of < as_of - timedelta(days=KEPT_DAYS))
            )

    async def has(self, as_of: date) -> bool:
        async with self.db.session() as session:
            return (
                await session.scalar(select(DemandBatch.as_of).where(DemandBatch.as_of == as_of)) is not None
            )

    async def newest_before(self, moment: datetime, *, oldest: date) -> tuple[date, dict[int, float]] | None:
        """The newest batch completed before `moment` and made on `oldest` or later."""
        query = (
            select(DemandBatch)
            .where(DemandBatch.computed_at < moment, DemandBatch.as_of >= oldest)
            .order_by(DemandBatch.as_of.desc())
            .limit(1)
        )
        async with self.db.session() as session:
            batch = await session.scalar(query)
        if batch is None:
            return None
        return batch.as_of, {int(k): float(v) for k, v in batch.figures.items()}
