"""The day's demand batches in the state database: which one settles a day, and a week kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import pytest

from salesflow.state.database import StateDatabase
from salesflow.state.demand_batches import KEPT_DAYS, DemandBatches
from tests.builders import TODAY, MovableClock


@pytest.fixture
async def database(state_url: str) -> AsyncIterator[StateDatabase]:
    async with StateDatabase.open(state_url) as db:
        await db.migrate()
        yield db


def at(day_offset: int, hour: int) -> datetime:
    return datetime.combine(TODAY + timedelta(days=day_offset), time(hour), tzinfo=UTC)


async def test_a_day_is_settled_by_the_newest_batch_completed_before_it_began(
    database: StateDatabase,
) -> None:
    clock = MovableClock(at(-12, 8))
    batches = DemandBatches(database, clock=clock)
    for offset in range(-12, 1):  # a batch every morning at 08:00, up to today's
        clock.now = at(offset, 8)
        await batches.save(TODAY + timedelta(days=offset), {1: float(offset), 2: 0.5})
    day_start = at(0, 0)
    found = await batches.newest_before(day_start, oldest=TODAY - timedelta(days=KEPT_DAYS - 1))
    assert found is not None and found[0] == TODAY - timedelta(days=1)  # today's landed after 00:00
    assert found[1] == {1: -1.0, 2: 0.5}
    assert await batches.has(TODAY) and not await batches.has(TODAY - timedelta(days=KEPT_DAYS + 1))
    assert await batches.has(TODAY - timedelta(days=KEPT_DAYS))  # a week (and a day) kept, no more
    clock.now = at(0, 9)
    await batches.save(TODAY, {1: 99.0})  # the same day again (another process): the first one stays
    found = await batches.newest_before(at(1, 0), oldest=TODAY)
    assert found is not None and found[1][1] == 0.0
    assert await batches.newest_before(day_start, oldest=TODAY) is None  # nothing settled from before
