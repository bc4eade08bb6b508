"""Broker and tasks. Embedded (`JOB_BACKEND=memory`, the default): Taskiq's in-memory broker runs jobs in the
API process, off the event loop (rendering goes to a worker thread). Distributed (`JOB_BACKEND=redis`):
taskiq-redis's Redis Streams broker with acknowledgement after execution; `salesflow worker` processes
consume it. A worker reads one message per free slot (nothing it has read waits unstarted) and keeps a key
alive while it lives: once a worker's key lapses, the sweep adds the messages it had taken to their stream
again (`hand_back_dead_consumers`), so they are taken within a lease and a sweep, not after Redis's idle
timeout (`REPORT_JOB_TIMEOUT_SECONDS`, the last resort).

Each `JobQueue` is a stream of its own and a worker takes each of its queues with a receiver and slots of
its own: a report job or an alert check never waits behind the day's demand-forecast chunks.

Tasks are thin: they carry a job id and call the service that owns the job (`context.state`), which keeps
the record, the lease and the outcome in the state database.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AsyncBroker, Context, InMemoryBroker, TaskiqDepends, TaskiqMessage, TaskiqMiddleware
from taskiq.exceptions import SendTaskError
from taskiq_redis import RedisStreamBroker

from salesflow.config import Settings
from salesflow.errors import QueueUnavailable
from salesflow.heartbeat import beating, cancel_and_wait
from salesflow.metrics import JobMetrics
from salesflow.models.jobs import JobQueue
from salesflow.models.reports import JobOutcome

logger = logging.getLogger(__name__)

QUEUE = "salesflow:jobs"
# The interactive stream keeps the name of the one queue before there were two: messages in flight survive.
STREAMS = {JobQueue.INTERACTIVE: QUEUE, JobQueue.BATCH: f"{QUEUE}:batch"}
CONSUMER_GROUP = "salesflow-workers"
QUEUE_ALIVE = f"{QUEUE}:alive"
CONSUMER_ALIVE = f"{QUEUE}:consumer:"  # + a worker's consumer name: present while that worker lives
HAND_BACK_BATCH = 100  # messages of one dead consumer moved per sweep and stream
HAND_BACK_SECONDS = 15.0  # a stopping process waits no longer to hand its jobs back
GENERATE_REPORT = "salesflow.reports.generate"
FORECAST_DEMAND_CHUNK = "salesflow.demand.forecast_chunk"
CHECK_ALERTS = "salesflow.alerts.check"


async def generate_report(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> JobOutcome:
    """One attempt at a report job."""
    outcome: JobOutcome = await context.state.reports.run(job_id)
    return outcome


async def forecast_demand_chunk(
    as_of: str, index: int, count: int, product_ids: list[int], context: Annotated[Context, TaskiqDepends()]
) -> None:
    """One chunk of the day's demand-forecast batch."""
    await context.state.demand.compute_chunk(date.fromisoformat(as_of), index, count, product_ids)


async def check_alerts(trigger: str, slot: str | None, context: Annotated[Context, TaskiqDepends()]) -> None:
    """One evaluation of the alert rules (a scheduled slot is evaluated once, whoever runs it)."""
    await context.state.alerts.check(trigger=trigger, slot=datetime.fromisoformat(slot) if slot else None)


class RunningJobs(TaskiqMiddleware):
    """The jobs this process is running, so that stopping can wait for them or cancel them."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: set[asyncio.Task[Any]] = set()

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        task = asyncio.current_task()  # the receiver runs each message in a task of its own
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return message

    async def drain(self, grace_seconds: float, *, pending: set[asyncio.Task[Any]] | None = None) -> None:
        """Running jobs (and `pending` ones, not started yet) get `grace_seconds` to finish; the rest are
        cancelled. Returns once none runs."""
        running = self.tasks | (pending or set())
        if running:
            await asyncio.wait(running, timeout=grace_seconds)
        await cancel_and_wait(self.tasks | (pending or set()))


class JobRuntime:
    """The broker with this service's tasks registered, and the way to enqueue each."""

    def __init__(
        self, broker: AsyncBroker, *, grace_seconds: float = 30.0, lease_seconds: float = 20.0
    ) -> None:
        self.running = RunningJobs()
        self.broker = broker.with_middlewares(JobMetrics(), self.running)
        self.grace_seconds = grace_seconds
        self.lease_seconds = lease_seconds
        # Set by the composition root: hands back the jobs this process held when they were cancelled.
        self.hand_back: Callable[..., Awaitable[int]] | None = None
        self._closed = False
        # Any: Taskiq's typing counts the injected context as an argument of `kiq`.
        # The `queue_name` label is the stream the Redis broker sends a task's messages to.
        interactive, batch = STREAMS[JobQueue.INTERACTIVE], STREAMS[JobQueue.BATCH]
        self._generate_report: Any = broker.register_task(
            generate_report, task_name=GENERATE_REPORT, queue_name=interactive
        )
        self._forecast_chunk: Any = broker.register_task(
            forecast_demand_chunk, task_name=FORECAST_DEMAND_CHUNK, queue_name=batch
        )
        self._check_alerts: Any = broker.register_task(
            check_alerts, task_name=CHECK_ALERTS, queue_name=interactive
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> JobRuntime:
        if settings.jobs.backend == "redis":
            if not settings.storage.redis_url:
                raise ValueError("JOB_BACKEND=redis needs REDIS_URL")
            broker: AsyncBroker = RedisStreamBroker(
                url=settings.storage.redis_url,
                queue_name=QUEUE,
                consumer_group_name=CONSUMER_GROUP,
                consumer_name=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
                idle_timeout=int(settings.reports.job_timeout_seconds * 1000),
                # One message a read: the receiver reads only when a slot is free, so a worker holds no
                # message it has not started (a killed one loses none; the rest waits for other workers).
                xread_count=1,
                unacknowledged_lock_timeout=settings.reports.job_timeout_seconds,
            )
        else:
            broker = InMemoryBroker()
        return cls(
            broker,
            grace_seconds=settings.jobs.shutdown_grace_seconds,
            lease_seconds=settings.jobs.lease_seconds,
        )

    @property
    def distributed(self) -> bool:
        return isinstance(self.broker, RedisStreamBroker)

    async def declare_queue(self) -> bool:
        """The workers' consumer group on every queue's stream, from its first message: after Redis restarted
        empty, messages sent before a worker came back are still delivered (claims make a replay harmless).
        True when Redis had lost the queue (restarted empty, or first use): what it held must go again."""
        if not isinstance(self.broker, RedisStreamBroker):
            return False
        async with Redis(connection_pool=self.broker.connection_pool) as redis:
            for stream in STREAMS.values():
                try:
                    await redis.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):  # it exists: nothing to do
                        raise
            # A key that lives as long as Redis's data: whoever finds it missing knows the queue was lost.
            return bool(await redis.set(QUEUE_ALIVE, b"1", nx=True))

    def listener(self, queue: JobQueue) -> AsyncBroker:
        """The broker as one queue's receiver sees it: the same tasks, state, middlewares and connections,
        reading that queue's stream only."""
        if not isinstance(self.broker, RedisStreamBroker):
            raise TypeError("only the Redis broker has queues to listen to")
        view = copy.copy(self.broker)
        view.queue_name = STREAMS[queue]
        view.additional_streams = {}
        return view

    @asynccontextmanager
    async def consuming(self) -> AsyncIterator[None]:
        """Say that this process's consumer lives while the block runs: a key renewed every third of
        `lease_seconds`, removed at the end. Whoever sweeps hands a lapsed consumer's messages back."""
        if not isinstance(self.broker, RedisStreamBroker):
            raise TypeError("only the Redis broker has consumers")
        key, pool = CONSUMER_ALIVE + self.broker.consumer_name, self.broker.connection_pool
        lease_ms = int(self.lease_seconds * 1000)

        async def beat() -> bool:
            try:
                async with Redis(connection_pool=pool) as redis:
                    await redis.set(key, b"1", px=lease_ms)
            except (RedisError, OSError):  # Redis is away: the receivers wait for it too; the next beat tries
                logger.warning("worker's alive key not renewed", exc_info=True)
            return True

        await beat()
        try:
            async with beating(beat, self.lease_seconds / 3):
                yield
        finally:  # gone at once, not a lease later: what it still holds is handed back sooner
            shielded = anyio.CancelScope(shield=True)
            with shielded, anyio.move_on_after(HAND_BACK_SECONDS), contextlib.suppress(RedisError, OSError):
                async with Redis(connection_pool=pool) as redis:
                    await redis.delete(key)

    async def hand_back_dead_consumers(self) -> int:
        """Add the messages a dead worker had taken (its alive key lapsed, idle a lease) to their stream
        again, acknowledge the originals and remove the worker from the consumer group; how many were
        moved. Claiming them first (conditional on their idle time) makes two sweepers move each once."""
        if not isinstance(self.broker, RedisStreamBroker):
            return 0
        lease_ms = int(self.lease_seconds * 1000)
        moved = 0
        async with Redis(connection_pool=self.broker.connection_pool) as redis:
            for stream in STREAMS.values():
                try:
                    consumers = await redis.xinfo_consumers(stream, CONSUMER_GROUP)
                except ResponseError:  # no stream or group yet
                    continue
                for consumer in consumers:
                    name = _text(consumer["name"])
                    if int(consumer["idle"]) < lease_ms or await redis.exists(CONSUMER_ALIVE + name):
                        continue
                    moved += await self._move_taken(redis, stream, name, min_idle_ms=lease_ms)
        return moved

    async def _move_taken(self, redis: Redis, stream: str, consumer: str, *, min_idle_ms: int) -> int:
        """Up to `HAND_BACK_BATCH` of `consumer`'s unacknowledged messages, added anew to `stream`; the
        consumer is removed once it holds none."""
        assert isinstance(self.broker, RedisStreamBroker)
        pending = await redis.xpending_range(
            stream, CONSUMER_GROUP, min="-", max="+", count=HAND_BACK_BATCH, consumername=consumer
        )
        if not pending:
            await redis.xgroup_delconsumer(stream, CONSUMER_GROUP, consumer)
            return 0
        claimed = await redis.xclaim(
            stream,
            CONSUMER_GROUP,
            self.broker.consumer_name,
            min_idle_time=min_idle_ms,
            message_ids=[entry["message_id"] for entry in pending],
        )
        for message_id, fields in claimed:
            async with redis.pipeline(transaction=True) as pipe:
                if fields:  # None: the entry itself was deleted from the stream; only its claim is left
                    pipe.xadd(stream, fields)
                pipe.xack(stream, CONSUMER_GROUP, message_id)
                await pipe.execute()
        if claimed:
            logger.info(
                "messages of a dead worker handed back", extra={"consumer": consumer, "count": len(claimed)}
            )
        return len(claimed)

    async def queue_depth(self) -> dict[tuple[JobQueue, str], int]:
        """Per queue, messages not yet delivered to a worker (`waiting`) and delivered but not yet
        acknowledged (`delivered`); empty for the in-process broker."""
        if not isinstance(self.broker, RedisStreamBroker):
            return {}
        depth: dict[tuple[JobQueue, str], int] = {}
        async with Redis(connection_pool=self.broker.connection_pool) as redis:
            for queue, stream in STREAMS.items():
                try:
                    groups = await redis.xinfo_groups(stream)
                except ResponseError:  # no such stream yet: nothing was ever sent to it
                    groups = []
                group = next((g for g in groups if _text(g["name"]) == CONSUMER_GROUP), None)
                depth[queue, "delivered"] = int(group["pending"]) if group else 0
                lag = group.get("lag") if group else 0
                if lag is not None:  # Redis cannot tell after entries were deleted from the stream
                    depth[queue, "waiting"] = int(lag)
        return depth

    def attach(self, **services: Any) -> None:
        """What tasks reach through `context.state` (the report service, …)."""
        for name, service in services.items():
            setattr(self.broker.state, name, service)

    async def enqueue_report(self, job_id: str) -> None:
        await self._send(self._generate_report, job_id)

    async def enqueue_demand_chunk(self, as_of: str, index: int, count: int, product_ids: list[int]) -> None:
        await self._send(self._forecast_chunk, as_of, index, count, product_ids)

    async def enqueue_alert_check(self, trigger: str, slot: datetime | None = None) -> None:
        await self._send(self._check_alerts, trigger, slot.isoformat() if slot else None)

    async def _send(self, task: Any, *args: Any) -> None:
        try:
            await task.kiq(*args)
        except (SendTaskError, RedisError, OSError) as exc:
            raise QueueUnavailable("the job queue (Redis) is unavailable; try again shortly") from exc

    async def startup(self) -> None:
        await self.broker.startup()

    async def stop_jobs(self) -> None:
        """Running jobs get `grace_seconds` to finish, then are cancelled and handed back at once (before
        the broker closes, so that a distributed one queues them again)."""
        # The in-process broker starts a task per job as it is sent: one not started yet is cancelled too
        # (its job stays queued for the next start). Taskiq keeps no public handle on them.
        pending = set(self.broker._running_tasks) if isinstance(self.broker, InMemoryBroker) else None
        await self.running.drain(self.grace_seconds, pending=pending)
        if self.hand_back is not None:
            with anyio.move_on_after(HAND_BACK_SECONDS) as scope:
                await self.hand_back(requeue=self.distributed)
            if scope.cancelled_caught:
                logger.warning(
                    "jobs not handed back in time: the sweep hands them back once their lease expires",
                    extra={"seconds": HAND_BACK_SECONDS},
                )

    async def shutdown(self) -> None:
        """Stops the jobs (`stop_jobs`), so that none outlives the resources it uses; then the broker.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.stop_jobs()
        await self.broker.shutdown()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
