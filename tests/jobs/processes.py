"""The distributed shape's processes as the tests start them: their environment, their metrics read back."""

from __future__ import annotations

import os
from pathlib import Path

from salesflow.config import Settings
from salesflow.integration.java_demo import DEV_SECRET

LEASE_SECONDS = 6  # renewed while a job runs; short, so that a killed worker's job is taken again quickly


def worker_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """A process's environment for the distributed shape of `settings` (real clock, own DATA_DIR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_", "SYSTEM_"))}
    env.update(
        APP_ENV="test",
        DATA_SOURCE="java",
        JAVA_API_URL=settings.java.api_url,
        JAVA_JWT_SECRET=DEV_SECRET,
        JAVA_SERVICE_PHONE=str(settings.java.service_phone),
        JAVA_SERVICE_PASSWORD="password",
        REDIS_URL=str(settings.storage.redis_url),
        JOB_BACKEND="redis",
        STATE_DATABASE_URL=str(settings.storage.state_database_url),
        DATA_DIR=str(data_dir),
        EXPORT_DIR=str(settings.reports.export_dir),
        DEMAND_FORECASTS="false",
        FORECAST_WARM_UP="false",
        JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        JOB_SWEEP_SECONDS="1",
        SCHEDULER_ENABLED="false",
    )
    return env


def gauge(text: str, name: str, **labels: str) -> float:
    """A metric's value with these labels in a Prometheus scrape."""
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(wanted)))
