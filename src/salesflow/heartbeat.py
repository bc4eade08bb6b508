"""Work tied to a block: a task that runs while the block runs (`as_task`), and keeping something alive (a
job's lease, a cache lock) meanwhile (`beating`); tasks that outlive their caller until their owner closes
(`BackgroundTasks`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")
CANCEL_AGAIN_SECONDS = 1.0  # a cancelled task still running after this is cancelled again


async def cancel_and_wait(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until they end, cancelling again any still running a while later: a library
    can lose a cancellation (anyio swallows one that lands as `connect_tcp` settles its connection attempts,
    agronholm/anyio#1214), and the task would run on to its end, past a stop's bound."""
    running = {task for task in tasks if not task.done()}
    while running:
        for task in running:
            task.cancel()
        _, running = await asyncio.wait(running, timeout=CANCEL_AGAIN_SECONDS)
    await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def as_task(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """`work` runs as a task while the block runs; cancelled (and awaited) when it ends. A task, not a task
    group: the block's own exceptions reach the caller unwrapped, and the work's never cancel the block."""
    task = asyncio.get_running_loop().create_task(work)
    try:
        yield
    finally:
        await cancel_and_wait([task])


def beating(beat: Callable[[], Awaitable[bool]], every_seconds: float) -> AbstractAsyncContextManager[None]:
    """Call `beat` every `every_seconds` while the block runs, until it returns False (what it renewed is
    lost)."""

    async def beat_until_lost() -> None:
        while True:
            await asyncio.sleep(every_seconds)
            if not await beat():
                return

    return as_task(beat_until_lost())


class BackgroundTasks:
    """Tasks that outlive the call that started them; `aclose` cancels what still runs."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(_forget)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        await cancel_and_wait(list(self._tasks))


def _forget(task: asyncio.Task[Any]) -> None:
    """Retrieve a background task's outcome: callers that stopped waiting for it never will."""
    if not task.cancelled():
        task.exception()
