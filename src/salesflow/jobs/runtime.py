"""Broker and tasks. Embedded (`JOB_BACKEND=memory`, the default): Taskiq's in-memory broker runs jobs in the
API process, off the event loop (rendering goes to a worker thread). Distributed (`JOB_BACKEND=redis`):
taskiq-redis's Redis Streams broker with acknowledgement after execution, so a message whose worker dies is
delivered again (after `REPORT_JOB_TIMEOUT_SECONDS` idle); `salesflow worker` processes consume it.

Tasks are thin: they carry a job id and call the service that owns the job (`context.state`), which keeps
the record, the lease and the outcome in the state database.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any

import anyio
from taskiq import AsyncBroker, Context, InMemoryBroker, TaskiqDepends
from taskiq_redis import RedisStreamBroker

from salesflow.config import Settings
from salesflow.metrics import JobMetrics

QUEUE = "salesflow:jobs"
GENERATE_REPORT = "salesflow.reports.generate"
FORECAST_DEMAND_CHUNK = "salesflow.demand.forecast_chunk"
CHECK_ALERTS = "salesflow.alerts.check"


async def generate_report(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    """One attempt at a report job."""
    await context.state.reports.run(job_id)


async def forecast_demand_chunk(
    as_of: str, index: int, count: int, product_ids: list[int], context: Annotated[Context, TaskiqDepends()]
) -> None:
    """One chunk of the day's demand-forecast batch."""
    await context.state.demand.compute_chunk(date.fromisoformat(as_of), index, count, product_ids)


async def check_alerts(trigger: str, slot: str | None, context: Annotated[Context, TaskiqDepends()]) -> None:
    """One evaluation of the alert rules (a scheduled slot is evaluated once, whoever runs it)."""
    await context.state.alerts.check(trigger=trigger, slot=datetime.fromisoformat(slot) if slot else None)


class JobRuntime:
    """The broker with this service's tasks registered, and the way to enqueue each."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker.with_middlewares(JobMetrics())
        self._closed = False
        # Any: Taskiq's typing counts the injected context as an argument of `kiq`.
        self._generate_report: Any = broker.register_task(generate_report, task_name=GENERATE_REPORT)
        self._forecast_chunk: Any = broker.register_task(
            forecast_demand_chunk, task_name=FORECAST_DEMAND_CHUNK
        )
        self._check_alerts: Any = broker.register_task(check_alerts, task_name=CHECK_ALERTS)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobRuntime:
        if settings.job_backend == "redis":
            if not settings.redis_url:
                raise ValueError("JOB_BACKEND=redis needs REDIS_URL")
            broker: AsyncBroker = RedisStreamBroker(
                url=settings.redis_url,
                queue_name=QUEUE,
                consumer_group_name="salesflow-workers",
                idle_timeout=int(settings.report_job_timeout_seconds * 1000),
                # Read no more than a worker runs at once: the rest stays in the stream for other workers.
                xread_count=settings.job_worker_concurrency,
                unacknowledged_lock_timeout=settings.report_job_timeout_seconds,
            )
        else:
            broker = InMemoryBroker()
        return cls(broker)

    def attach(self, **services: Any) -> None:
        """What tasks reach through `context.state` (the report service, …)."""
        for name, service in services.items():
            setattr(self.broker.state, name, service)

    async def enqueue_report(self, job_id: str) -> None:
        await self._generate_report.kiq(job_id)

    async def enqueue_demand_chunk(self, as_of: str, index: int, count: int, product_ids: list[int]) -> None:
        await self._forecast_chunk.kiq(as_of, index, count, product_ids)

    async def enqueue_alert_check(self, trigger: str, slot: datetime | None = None) -> None:
        await self._check_alerts.kiq(trigger, slot.isoformat() if slot else None)

    async def startup(self) -> None:
        await self.broker.startup()

    async def shutdown(self, *, grace_seconds: float = 30.0) -> None:
        """Embedded: running jobs get `grace_seconds` to finish, then are cancelled (a cancelled job keeps its
        lease and is taken again after it); either way none outlives the resources it uses. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if isinstance(self.broker, InMemoryBroker):
            with anyio.move_on_after(grace_seconds):
                await self.broker.wait_all()
            running = list(self.broker._running_tasks)  # Taskiq keeps no public handle on them
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        await self.broker.shutdown()
