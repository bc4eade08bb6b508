"""Fixtures of the distributed shape: its settings on PostgreSQL and Redis, `salesflow worker` processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from salesflow.config import Settings
from tests.conftest import _reset_postgres
from tests.jobs.processes import LEASE_SECONDS, worker_env


@pytest.fixture
def distributed(prod_settings: Settings, postgres_url: str, tmp_path: Path) -> Settings:
    _reset_postgres(postgres_url)
    return prod_settings.replaced(
        job_backend="redis",
        state_database_url=postgres_url,
        export_dir=tmp_path / "shared",
        job_lease_seconds=LEASE_SECONDS,
        job_sweep_seconds=1.0,
    )


@pytest.fixture
def start_worker(distributed: Settings, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    workers: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(**env_overrides: str) -> subprocess.Popen[bytes]:
        env = worker_env(distributed, tmp_path / f"worker{len(workers)}") | env_overrides
        logs.append(tmp_path / f"worker{len(workers)}.log")
        with logs[-1].open("wb") as log:  # the child keeps its own copy of the descriptor
            worker = subprocess.Popen(
                [sys.executable, "-m", "salesflow.cli", "worker"], env=env, stdout=log, stderr=log
            )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:  # that test has failed already; leave no process behind
            worker.kill()
            worker.wait()
    for log in logs:  # shown with a failed test's captured output, to tell what a worker was doing
        tail = log.read_text(errors="replace").splitlines()[-30:]
        sys.stderr.write("\n".join([f"--- {log.name}, last lines:", *tail, ""]))
