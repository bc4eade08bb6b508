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

    def start(**env_overrides: str) -> subprocess.Popen[bytes]:
        env = worker_env(distributed, tmp_path / f"worker{len(workers)}") | env_overrides
        worker = subprocess.Popen(
            [sys.executable, "-m", "salesflow.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
