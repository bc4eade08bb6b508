"""20 concurrent report jobs in the distributed shape: 1 worker, then 2, and the API's `/health` meanwhile;
then one of the 2 workers SIGKILLed while it generates, with the default lease and sweep settings.

    .venv/bin/python -m bench.report_jobs [--products 200] [--days 400] [--jobs 20]

Real processes: the Java stand-in (a thread of this process) on a seeded store, a private redis-server, a
PostgreSQL database of the bench's own, one `salesflow serve` (JOB_BACKEND=redis) and `salesflow worker`s.
Each round submits `--jobs` combined PDF reports at once and waits for all; another thread polls `/health`
every 20 ms. Baseline in the same run: `/health` polled with no job in flight. The kill round submits `--jobs`
jobs, SIGKILLs the worker of the first job seen generating, and times every job's completion (the killed
worker's jobs are taken again once their lease, `JOB_LEASE_SECONDS`, lapses and a sweep runs). Prints one
JSON line per round.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from tests.servers import RedisProcess, answers, free_port, postgres_database, wait_until

from bench.common import SERVICE_PHONE, emit, java_standin, standin_env


def poll_health(client: httpx.Client, done: threading.Event, samples: list[float]) -> None:
    while not done.is_set():
        started = time.perf_counter()
        client.get("/health")
        samples.append(time.perf_counter() - started)
        done.wait(0.02)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def health_figures(samples: list[float]) -> dict[str, float]:
    return {
        "health_p50_ms": round(statistics.median(samples) * 1000, 1),
        "health_p99_ms": round(percentile(samples, 0.99) * 1000, 1),
        "health_max_ms": round(max(samples) * 1000, 1),
    }


def run_round(api: httpx.Client, health: httpx.Client, jobs: int, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    done, samples = threading.Event(), []  # type: ignore[var-annotated]
    poller = threading.Thread(target=poll_health, args=(health, done, samples))
    poller.start()
    started = time.perf_counter()
    try:
        request = {"report_type": "combined", "format": "pdf"}
        ids = [api.post("/reports/jobs", json=request, headers=headers).json()["job_id"] for _ in range(jobs)]

        wanted = set(ids)

        def all_done() -> bool:  # one listing per poll: the poll itself must not load the machine
            page = api.get("/reports/jobs", params={"limit": 200}, headers=headers).json()["data"]
            finished = {j["job_id"] for j in page if j["status"] in ("completed", "failed")}
            return wanted <= finished

        wait_until(all_done, timeout=1800, interval=0.5, what="the jobs")
        elapsed = time.perf_counter() - started
    finally:
        done.set()
        poller.join()
    page = api.get("/reports/jobs", params={"limit": 200}, headers=headers).json()["data"]
    mine = [j for j in page if j["job_id"] in wanted]
    return {
        "seconds": round(elapsed, 2),
        "completed": sum(j["status"] == "completed" for j in mine),
        "jobs_per_worker": sorted(Counter(j["worker"] for j in mine).values()),
        **health_figures(samples),
    }


def kill_round(
    api: httpx.Client, token: str, jobs: int, workers: dict[int, subprocess.Popen[bytes]]
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    request = {"report_type": "combined", "format": "pdf"}
    ids = [api.post("/reports/jobs", json=request, headers=headers).json()["job_id"] for _ in range(jobs)]
    victim: dict[str, Any] = {}

    def someone_generating() -> bool:
        finished = 0
        for job_id in ids:
            state = api.get(f"/reports/jobs/{job_id}", headers=headers).json()
            if state["status"] == "generating" and state["worker"]:
                victim.update(state)
                return True
            finished += state["status"] in ("completed", "failed")
        if finished == len(ids):
            raise RuntimeError(
                "every job finished before one was seen generating: use more --products/--days"
            )
        return False

    wait_until(someone_generating, timeout=600, interval=0.05, what="a job in progress")
    pid = int(str(victim["worker"]).rsplit(":", 1)[1])
    killed_at = time.perf_counter()
    workers[pid].send_signal(signal.SIGKILL)
    workers[pid].wait(30)
    done: dict[str, float] = {}

    def all_done() -> bool:
        for job_id in set(ids) - set(done):
            if api.get(f"/reports/jobs/{job_id}", headers=headers).json()["status"] in (
                "completed",
                "failed",
            ):
                done[job_id] = time.perf_counter() - killed_at
        return len(done) == len(ids)

    wait_until(all_done, timeout=1800, interval=0.5, what="every job")
    states = [api.get(f"/reports/jobs/{job_id}", headers=headers).json() for job_id in ids]
    return {
        "jobs": jobs,
        "completed": sum(s["status"] == "completed" for s in states),
        "killed_workers_job_done_after_s": round(done[victim["job_id"]], 1),
        "last_job_done_after_s": round(max(done.values()), 1),
        "taken_again": sum(int(s["attempts"]) > 1 for s in states),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    processes: list[subprocess.Popen[bytes]] = []
    with (
        postgres_database("salesflow_bench") as state_url,
        tempfile.TemporaryDirectory() as folder,
        java_standin(Path(folder), products=args.products, days=args.days) as (state, java_url),
    ):
        root = Path(folder)
        (root / "redis").mkdir()
        redis = RedisProcess(root / "redis").start()
        port = free_port()
        env = standin_env(
            java_url,
            root,
            REDIS_URL=redis.url,
            JOB_BACKEND="redis",
            STATE_DATABASE_URL=state_url,
            REPORT_JOBS_PER_USER="1000",  # one user's jobs measure the workers here, not fairness
        )

        def spawn(command: str, name: str, **extra: str) -> None:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "salesflow.cli", command],
                    env={**env, "DATA_DIR": str(root / name), **extra},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

        try:
            spawn("serve", "api", PORT=str(port))
            base = f"http://127.0.0.1:{port}/api/v1"
            with (
                httpx.Client(base_url=base, timeout=60, trust_env=False) as api,
                httpx.Client(base_url=base, timeout=60, trust_env=False) as health,
            ):
                wait_until(lambda: answers(health), timeout=120, what="the API")
                token = state.issue_access_token(state.users[SERVICE_PHONE])
                idle: list[float] = []
                stop = threading.Event()
                poller = threading.Thread(target=poll_health, args=(health, stop, idle))
                poller.start()
                time.sleep(3)  # the baseline is a measurement window, not a wait for something
                stop.set()
                poller.join()
                emit("report_jobs_baseline", {"workers": 0, **health_figures(idle)})
                spawn("worker", "worker0")
                run_round(api, health, 2, token)  # the worker's caches warm up, as in service
                emit(
                    "report_jobs",
                    {"workers": 1, "jobs": args.jobs, **run_round(api, health, args.jobs, token)},
                )
                spawn("worker", "worker1")
                for _ in range(10):  # until the new worker has started and taken jobs (its caches are warm)
                    if len(run_round(api, health, 4, token)["jobs_per_worker"]) == 2:
                        break
                emit(
                    "report_jobs",
                    {"workers": 2, "jobs": args.jobs, **run_round(api, health, args.jobs, token)},
                )
                workers = {p.pid: p for p in processes[1:]}
                emit("report_jobs_worker_killed", kill_round(api, token, args.jobs, workers))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
            redis.stop()


if __name__ == "__main__":
    main()
