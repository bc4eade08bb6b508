"""`salesflow worker`: a process that runs jobs from the Redis Streams broker.

It builds the same resources as the API (data source, caches, state database), attaches the services the
tasks call, and consumes the queue; messages are acknowledged once their task has run, so a worker killed
mid-job leaves its message to be delivered again, and its job is handed back by the sweep once its lease
expires (every worker and API process sweeps). SIGTERM stops the worker; a job it was running is taken again
after its lease.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import start_http_server
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

from salesflow.config import Settings
from salesflow.jobs.sweep import sweep_jobs
from salesflow.resources import build_resources

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> int:
    if settings.job_backend != "redis":
        logger.error("salesflow worker needs JOB_BACKEND=redis (the in-memory broker runs jobs in the API)")
        return 2
    resources = await build_resources(settings)
    metrics_server = None
    if settings.worker_metrics_port:
        metrics_server, _ = start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    try:
        resources.jobs.broker.is_worker_process = True
        receiver = asyncio.create_task(
            run_receiver_task(
                resources.jobs.broker,
                max_async_tasks=settings.job_worker_concurrency,
                ack_time=AcknowledgeType.WHEN_EXECUTED,
                run_startup=False,
            )
        )
        # Workers sweep too: a job whose worker died is handed back by whoever notices its lease expired
        # (Redis only redelivers an unacknowledged message when new ones arrive).
        sweeper = asyncio.create_task(sweep_jobs(resources))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logger.info("worker started", extra={"concurrency": settings.job_worker_concurrency})
        await stop.wait()
        for task in (receiver, sweeper):
            task.cancel()
        await asyncio.gather(receiver, sweeper, return_exceptions=True)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        await resources.aclose()
    return 0
