"""Every day's forecasts, kept until their days are known, then scored: what `GET /ml/accuracy` sums up.

A row is written once per day and series (whoever computes that part of the batch first), scored once
(conditionally: two processes scoring at once write the same figures once), and pruned after
`FORECAST_ACCURACY_DAYS` by the sweep (state/retention.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case, func, select, update
from sqlalchemy.exc import IntegrityError

from salesflow.state.database import StateDatabase
from salesflow.state.tables import ForecastScore

SHOP_SERIES = 0  # the whole shop's forecast (product ids start at 1)


@dataclass(frozen=True)
class Score:
    """One forecast scored against its days."""

    days: int
    actual: float
    predicted: float
    abs_error: float
    naive_abs_error: float
    in_80: int
    in_95: int


@dataclass(frozen=True)
class Totals(Score):
    """Scores summed over forecasts (one series, or many)."""

    forecasts: int
    mase: float | None  # the mean over forecasts that have a scale
    naive_mase: float | None


class ForecastScores:
    def __init__(self, db: StateDatabase, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self, as_of: date, forecasts: dict[int, tuple[dict[str, list[float]], float | None]]
    ) -> int:
        """Keep the day's forecasts not kept yet (series → days and scale); how many were new."""
        async with self.db.session() as session:
            kept = set(
                await session.scalars(
                    select(ForecastScore.product_id).where(
                        ForecastScore.as_of == as_of, ForecastScore.product_id.in_(list(forecasts))
                    )
                )
            )
        now = self.clock()
        rows = [
            ForecastScore(
                as_of=as_of,
                product_id=series,
                recorded_at=now,
                forecast=days,
                scale=scale,
                days=0,
                actual=0.0,
                predicted=0.0,
                abs_error=0.0,
                naive_abs_error=0.0,
                in_80=0,
                in_95=0,
            )
            for series, (days, scale) in forecasts.items()
            if series not in kept
        ]
        if not rows:
            return 0
        try:
            async with self.db.session() as session, session.begin():
                session.add_all(rows)
        except IntegrityError:  # another process kept the same forecasts of the same day meanwhile
            return 0
        return len(rows)

    async def due(self, *, made_by: date, limit: int) -> Sequence[ForecastScore]:
        """Forecasts not scored yet whose first day is `made_by` or earlier, the oldest first."""
        query = (
            select(ForecastScore)
            .where(ForecastScore.scored_at.is_(None), ForecastScore.as_of <= made_by)
            .order_by(ForecastScore.as_of, ForecastScore.product_id)
            .limit(limit)
        )
        async with self.db.session() as session:
            return list(await session.scalars(query))

    async def save(self, scores: dict[tuple[date, int], Score]) -> None:
        """Each forecast's score, once (its days are dropped: only the sums are kept)."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            for (as_of, series), score in scores.items():
                await session.execute(
                    update(ForecastScore)
                    .where(
                        ForecastScore.as_of == as_of,
                        ForecastScore.product_id == series,
                        ForecastScore.scored_at.is_(None),
                    )
                    .values(
                        scored_at=now,
                        forecast=None,
                        days=score.days,
                        actual=score.actual,
                        predicted=score.predicted,
                        abs_error=score.abs_error,
                        naive_abs_error=score.naive_abs_error,
                        in_80=score.in_80,
                        in_95=score.in_95,
                    )
                    .execution_options(synchronize_session=False)
                )

    async def totals(self, *, first: date, last: date, products: bool) -> Totals:
        """Scored forecasts made from `first` to `last`, summed: the shop's, or all products'."""
        async with self.db.session() as session:
            return _totals(
                (await session.execute(select(*_sums()).where(*_scored(first, last, products)))).one()
            )

    async def per_product(
        self, *, first: date, last: date, offset: int, limit: int
    ) -> tuple[list[tuple[int, Totals]], int]:
        """Each product's scored forecasts made from `first` to `last`, summed (the most sold first, a page),
        and how many products there are."""
        scored = _scored(first, last, products=True)
        count = select(func.count(func.distinct(ForecastScore.product_id))).where(*scored)
        page = (
            select(ForecastScore.product_id, *_sums())
            .where(*scored)
            .group_by(ForecastScore.product_id)
            .order_by(func.sum(ForecastScore.actual).desc(), ForecastScore.product_id)
            .offset(offset)
            .limit(limit)
        )
        async with self.db.session() as session:
            total = int(await session.scalar(count) or 0)
            rows = (await session.execute(page)).all()
        return [(int(row.product_id), _totals(row)) for row in rows], total


def _scored(first: date, last: date, products: bool) -> tuple[ColumnElement[bool], ...]:
    series = ForecastScore.product_id != SHOP_SERIES if products else ForecastScore.product_id == SHOP_SERIES
    return (
        ForecastScore.scored_at.is_not(None),
        ForecastScore.as_of >= first,
        ForecastScore.as_of <= last,
        series,
    )


def _sums() -> tuple[ColumnElement[Any], ...]:
    """The sums `Totals` is made of, each labelled with its field's name."""
    has_scale = (ForecastScore.scale > 0) & (ForecastScore.days > 0)
    per_day = ForecastScore.days * ForecastScore.scale
    summed = ("days", "actual", "predicted", "abs_error", "naive_abs_error", "in_80", "in_95")
    return (
        func.count().label("forecasts"),
        *(func.coalesce(func.sum(getattr(ForecastScore, name)), 0).label(name) for name in summed),
        func.avg(case((has_scale, ForecastScore.abs_error / per_day))).label("mase"),
        func.avg(case((has_scale, ForecastScore.naive_abs_error / per_day))).label("naive_mase"),
    )


def _totals(row: Row[Any]) -> Totals:
    sums = row._mapping

    def ratio(name: str) -> float | None:
        return None if sums[name] is None else float(sums[name])

    return Totals(
        forecasts=int(sums["forecasts"]),
        days=int(sums["days"]),
        actual=float(sums["actual"]),
        predicted=float(sums["predicted"]),
        abs_error=float(sums["abs_error"]),
        naive_abs_error=float(sums["naive_abs_error"]),
        in_80=int(sums["in_80"]),
        in_95=int(sums["in_95"]),
        mase=ratio("mase"),
        naive_mase=ratio("naive_mase"),
    )
