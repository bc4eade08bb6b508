"""The daily demand-forecast batch: one process pool in the API (embedded) vs chunks on 1 and 2 job workers;
then report jobs submitted while the batch runs on the 2 workers.

    .venv/bin/python -m bench.demand_batch [--products 200] [--chunk 25] [--reports 4]

Real processes: the Java stand-in (a thread) on a seeded store, a private redis-server, a PostgreSQL database
of the bench's own and `salesflow worker`s. The coordinator is this process (`DemandForecasts.refresh`). The
baseline, in the same run, is the embedded batch: one spawned process pool of one process. Prints one JSON
line per shape. The reports' baseline, in the same run: the same reports on the same workers with no batch.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from tests.builders import TODAY, pinned_clock
from tests.servers import RedisProcess, postgres_database

from bench.common import SERVICE_PHONE, emit, java_standin, standin_env
from salesflow.config import Settings
from salesflow.integration.java_demo import DEV_SECRET
from salesflow.models.auth import Role, User
from salesflow.models.cache import CachePipeline
from salesflow.models.jobs import JobQueue
from salesflow.models.reports import JobStatus, ReportRequest, ReportType
from salesflow.resources import Resources, open_resources


async def timed_refresh(settings: Settings) -> tuple[float, int]:
    async with open_resources(settings, clock=pinned_clock) as resources:
        await resources.lines.products()  # the cold load is not the batch's
        await resources.lines.window(TODAY, TODAY)
        await resources.cache.invalidate(CachePipeline.ML)
        started = time.perf_counter()
        result = await resources.demand_forecasts.refresh()
        return time.perf_counter() - started, len(result)


BENCH_USER = User(subject="bench", username="bench", roles=frozenset({Role.ADMIN}))


async def one_report(resources: Resources) -> float:
    started = time.perf_counter()
    job = await resources.reports.submit(ReportRequest(report_type=ReportType.COMBINED), user=BENCH_USER)
    with anyio.fail_after(1800):
        done = await resources.reports.wait(job.id)
    if done.status != JobStatus.COMPLETED:
        raise RuntimeError(f"report job {job.id} {done.status}: {done.error}")
    return time.perf_counter() - started


async def chunks_queued(resources: Resources) -> None:
    """Returns once the batch's chunks wait in their queue (polled: Redis offers nothing to await)."""
    while True:
        if (await resources.jobs.queue_depth()).get((JobQueue.BATCH, "waiting"), 0):
            return
        await asyncio.sleep(0.05)


async def reports_during_batch(settings: Settings, reports: int) -> dict[str, object]:
    """Seconds from submission to completion of `reports` combined PDF reports, one after the other: with no
    batch (baseline), then while the day's batch runs (each started once the batch's chunks are queued)."""
    async with open_resources(settings, clock=pinned_clock) as resources:
        idle = [await one_report(resources) for _ in range(reports)]
        await resources.cache.invalidate(CachePipeline.ML)
        started = time.perf_counter()
        batch = asyncio.create_task(resources.demand_forecasts.refresh())
        await chunks_queued(resources)
        during, batch_running = [], []
        for _ in range(reports):
            during.append(await one_report(resources))
            batch_running.append(not batch.done())
        await batch
        return {
            "reports": reports,
            "report_seconds_no_batch": [round(s, 2) for s in idle],
            "report_seconds_during_batch": [round(s, 2) for s in during],
            "batch_still_running_at_each": batch_running,
            "batch_seconds": round(time.perf_counter() - started, 1),
        }


async def measure(args: argparse.Namespace, root: Path, state_url: str) -> None:
    with java_standin(root, products=args.products, days=400) as (_, java_url):
        await measure_on(args, root, state_url, java_url)


async def measure_on(args: argparse.Namespace, root: Path, state_url: str, java_url: str) -> None:
    (root / "redis").mkdir()
    redis = RedisProcess(root / "redis").start()
    workers: list[subprocess.Popen[bytes]] = []
    base = {
        "_env_file": None,
        "app_env": "test",
        "data_source": "java",
        "java_api_url": f"{java_url}/api/v1",
        "java_jwt_secret": DEV_SECRET,
        "java_service_phone": SERVICE_PHONE,
        "java_service_password": "password",
        "redis_url": redis.url,
        "data_dir": root / "coordinator",
        "export_dir": root / "exports",
        "demand_forecasts": True,
        "forecast_warm_up": False,
        "scheduler_enabled": False,
        "demand_chunk_products": args.chunk,
    }
    distributed = {**base, "job_backend": "redis", "state_database_url": state_url}
    env = standin_env(
        java_url,
        root,
        REDIS_URL=redis.url,
        JOB_BACKEND="redis",
        STATE_DATABASE_URL=state_url,
        # One chunk at a time per worker (one core each): workers, not one worker's threads, are compared.
        JOB_WORKER_CONCURRENCY="1",
    )
    try:
        seconds, products = await timed_refresh(Settings(**base))
        emit(
            "demand_batch",
            {"shape": "embedded (1 pool process)", "seconds": round(seconds, 1), "products": products},
        )
        one = 0.0
        for count in (1, 2):
            workers.append(
                subprocess.Popen(  # noqa: ASYNC220 (a bench starting its workers once)
                    [sys.executable, "-m", "salesflow.cli", "worker"],
                    env={**env, "DATA_DIR": str(root / f"worker{count}")},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            await timed_refresh(Settings(**distributed))  # the new worker warms up
            seconds, products = await timed_refresh(Settings(**distributed))
            one = one or seconds
            emit(
                "demand_batch",
                {
                    "shape": f"{count} worker(s), chunks of {args.chunk}",
                    "seconds": round(seconds, 1),
                    "products": products,
                    "speed_up_vs_1_worker": round(one / seconds, 2),
                },
            )
        emit("reports_during_batch", await reports_during_batch(Settings(**distributed), args.reports))
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=25)
    parser.add_argument("--reports", type=int, default=4)
    args = parser.parse_args()
    with postgres_database("salesflow_bench") as state_url, tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure(args, Path(folder), state_url))


if __name__ == "__main__":
    main()
