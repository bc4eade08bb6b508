"""`salesflow worker`: a process that runs jobs from the Redis Streams broker.

It builds the same resources as the API (data source, caches, state database), attaches the services the
tasks call, and consumes the queue; messages are acknowledged once their task has run, so a worker killed
mid-job leaves its message to be delivered again, and its job is handed back by the sweep once its lease
expires (every worker and API process sweeps). It takes the queues of `JOB_WORKER_QUEUES`, each with a
receiver and `JOB_WORKER_CONCURRENCY` slots of its own, so a long batch never holds up a person's report.
SIGTERM stops taking messages; running jobs get
`JOB_SHUTDOWN_GRACE_SECONDS` to finish, then are cancelled, and a cancelled report job is handed back at once.
Stopping is bounded: a process that has not exited within the grace, the hand-back, `STOP_SECONDS` and
`CLOSE_SECONDS` of the signal (a job that ignores its cancellation, a close stuck on a dead connection or a
thread) exits anyway, and a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import AsyncExitStack
from types import FrameType

import anyio
from prometheus_client import start_http_server
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from salesflow.background import ProcessKind, running_background
from salesflow.config import Settings
from salesflow.heartbeat import cancel_and_wait
from salesflow.jobs.runtime import HAND_BACK_SECONDS
from salesflow.models.jobs import JobQueue
from salesflow.resources import Resources, open_resources

logger = logging.getLogger(__name__)

STOP_SECONDS = 5.0  # for the receiver to let go of the queue once no job runs
CLOSE_SECONDS = 20.0  # for the rest of the stop, once the jobs are stopped and handed back
RECONNECT_SECONDS = 1.0
FORCED_EXIT = 1


async def run_worker(settings: Settings) -> int:
    if settings.jobs.backend != "redis":
        logger.error("salesflow worker needs JOB_BACKEND=redis (the in-memory broker runs jobs in the API)")
        return 2
    async with AsyncExitStack() as stack:
        if settings.metrics.worker_port:
            server, _ = start_http_server(settings.metrics.worker_port, addr=settings.metrics.worker_host)
            stack.callback(server.shutdown)
        resources = await stack.enter_async_context(open_resources(settings))
        await stack.enter_async_context(resources.jobs.consuming())
        await _work(resources)
    return 0


async def _work(resources: Resources) -> None:
    """Take the queues' messages until a signal; then stop taking them, stop the jobs and let go."""
    settings, jobs = resources.settings, resources.jobs
    jobs.broker.is_worker_process = True
    no_more_messages = asyncio.Event()
    receiving = [
        asyncio.create_task(_receive(resources, queue, settings.jobs.worker_concurrency, no_more_messages))
        for queue in dict.fromkeys(settings.jobs.worker_queues)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop_or_exit, stop)
    # The sweep and the loop watch stop with the stop's first step, as the receivers do.
    async with running_background(resources, ProcessKind.WORKER):
        logger.info(
            "worker started",
            extra={"concurrency": settings.jobs.worker_concurrency, "queues": settings.jobs.worker_queues},
        )
        await stop.wait()
        # The whole stop is bounded from the signal: a background task or a job that does not end when
        # cancelled, or a stuck close, must not keep the process alive (a job not handed back is handed
        # back by the sweep, a lease later).
        _exit_after(jobs.grace_seconds + HAND_BACK_SECONDS + STOP_SECONDS + CLOSE_SECONDS, loop)
    logger.info("worker stopping", extra={"running_jobs": len(jobs.running.tasks)})
    no_more_messages.set()
    await jobs.stop_jobs()
    logger.info("worker's jobs stopped; letting go of the queue")
    with anyio.move_on_after(STOP_SECONDS):
        await asyncio.gather(*receiving, return_exceptions=True)
    await cancel_and_wait(receiving)


async def _receive(
    resources: Resources, queue: JobQueue, concurrency: int, no_more_messages: asyncio.Event
) -> None:
    """Take `queue`'s messages until `no_more_messages`; when Redis goes away, wait for it and take them
    again. A Redis that restarted empty gets the queues declared anew, and the queued jobs are sent again
    (their messages were lost with it)."""
    jobs = resources.jobs
    while not no_more_messages.is_set():
        receiver = Receiver(
            jobs.listener(queue),
            executor=None,
            max_async_tasks=concurrency,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
            run_startup=False,
            wait_tasks_timeout=jobs.grace_seconds,
        )
        try:
            if await jobs.declare_queue():
                await resources.reports.requeue_queued()
            await receiver.listen(no_more_messages)
        except Exception:
            logger.warning("job queue unreachable; trying again", exc_info=True)
            await asyncio.sleep(RECONNECT_SECONDS)


def _stop_or_exit(stop: asyncio.Event) -> None:
    """The first signal stops the worker gracefully; a second one (an impatient operator) exits at once."""
    if stop.is_set():
        logger.warning("worker stopped by a second signal, without finishing its stop")
        os._exit(FORCED_EXIT)
    stop.set()


def _exit_after(seconds: float, loop: asyncio.AbstractEventLoop) -> None:
    """Exit the process `seconds` from now unless it has exited by then; a timer thread, so that it fires even
    when the event loop or the interpreter's shutdown is stuck. What the loop's tasks were waiting on is
    logged first: the operator's (and a failed test's) only clue to what held the stop up."""

    def force() -> None:
        logger.error(
            "worker did not finish stopping in time; exiting anyway",
            extra={"seconds": seconds, "waiting": _waiting_tasks(loop)},
        )
        os._exit(FORCED_EXIT)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()


def _waiting_tasks(loop: asyncio.AbstractEventLoop, limit: int = 20) -> list[str]:
    """Where each of the loop's unfinished tasks waits: its chain of awaits, innermost last. Read from
    another thread while the process is about to exit: a best effort that never raises."""
    try:
        waiting = []
        for task in [task for task in asyncio.all_tasks(loop) if not task.done()][:limit]:
            frames = traceback.StackSummary.extract(
                (frame, frame.f_lineno) for frame in _awaits(task.get_coro())
            )
            waiting.append(f"{task.get_name()}:\n{''.join(frames.format()[-12:])}")
        return waiting
    except Exception as exc:  # the tasks changed under this thread; the exit matters more
        return [f"not read ({type(exc).__name__})"]


def _awaits(awaitable: object) -> Iterator[FrameType]:
    """The frames of a suspended coroutine and of what it awaits, down to the innermost."""
    for _ in range(100):  # a bound, in case of a cycle
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            return
        yield frame
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
