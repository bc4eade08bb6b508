"""Keeping something alive (a job's lease, a cache lock) while a block of work runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


@asynccontextmanager
async def beating(beat: Callable[[], Awaitable[bool]], every_seconds: float) -> AsyncIterator[None]:
    """Call `beat` every `every_seconds` while the block runs, until it returns False (what it renewed is
    lost). A task, not a task group: the block's own exceptions reach the caller unwrapped."""

    async def beat_until_lost() -> None:
        while True:
            await asyncio.sleep(every_seconds)
            if not await beat():
                return

    beats = asyncio.create_task(beat_until_lost())
    try:
        yield
    finally:
        beats.cancel()
        await asyncio.gather(beats, return_exceptions=True)
