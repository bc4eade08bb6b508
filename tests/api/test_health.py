"""Readiness in PROD through the Java stand-in and a real Redis, including their outages."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from salesflow.config import Settings
from tests.servers import RedisProcess, wait_until


def test_prod_readiness_checks_java_redis_and_disk(
    serve: Callable[..., httpx.Client], prod_settings: Settings
) -> None:
    api = serve(prod_settings)
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert {k: v["status"] for k, v in response.json()["checks"].items()} == {
        "data_source": "ok",
        "state_database": "ok",
        "redis": "ok",
        "disk": "ok",
        "mail_outbox": "ok",
        "scheduler": "disabled",
    }


def test_readiness_reports_a_scheduler_that_can_no_longer_read_the_schedules(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    state_file = tmp_path / "state.sqlite"
    api = serve(
        make_settings(
            scheduler_enabled=True,
            schedule_sync_seconds=0.2,
            state_database_url=f"sqlite+aiosqlite:///{state_file}",
        )
    )
    assert api.get("/health/ready").json()["checks"]["scheduler"]["status"] == "ok"
    with sqlite3.connect(state_file) as db:  # the schedules table vanishes under the running scheduler
        db.execute("ALTER TABLE report_schedules RENAME TO report_schedules_gone")

    def reported() -> bool:
        check: dict[str, object] = api.get("/health/ready").json()["checks"]["scheduler"]
        return check == {
            "name": "scheduler",
            "status": "degraded",
            "detail": "the schedules could not be read from the state database lately",
            "latency_ms": None,
        }

    wait_until(reported, timeout=30, interval=0.2, what="the scheduler reported as degraded")
    assert api.get("/health/ready").status_code == 200  # requests are still served


def test_java_outage_makes_readiness_503_and_names_it(
    serve: Callable[..., httpx.Client], prod_settings: Settings, standin, tokens: dict[str, str]
) -> None:
    server, _ = standin
    api = serve(prod_settings)
    server.stop()
    response = api.get("/health/ready")
    assert response.status_code == 503
    check = response.json()["checks"]["data_source"]
    assert check["status"] == "error" and check["detail"].startswith("Java is unreachable (ConnectError")
    assert api.get("/health").status_code == 200  # liveness does not depend on Java


def test_with_the_redis_job_backend_redis_down_is_not_ready(
    serve: Callable[..., httpx.Client], prod_settings: Settings, redis_server: RedisProcess
) -> None:
    api = serve(prod_settings.replaced(job_backend="redis"))
    assert api.get("/health/ready").status_code == 200
    redis_server.stop()  # the broker is gone: jobs cannot be queued
    response = api.get("/health/ready")
    assert response.status_code == 503 and response.json()["checks"]["redis"]["status"] == "error"


def test_a_service_account_that_cannot_log_in_makes_readiness_503(
    serve: Callable[..., httpx.Client], prod_settings: Settings
) -> None:
    api = serve(prod_settings.replaced(java_service_password=SecretStr("not-the-password")))
    response = api.get("/health/ready")
    assert response.status_code == 503
    check = response.json()["checks"]["data_source"]
    assert check["status"] == "error"
    assert check["detail"].startswith(
        "Java authentication of the service account failed: Java refused the login"
    )
    assert "not-the-password" not in response.text


def test_redis_outage_degrades_but_requests_keep_working(
    serve: Callable[..., httpx.Client],
    prod_settings: Settings,
    redis_server: RedisProcess,
    tokens: dict[str, str],
) -> None:
    api = serve(prod_settings)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    assert api.get("/admin/cache", headers=admin).json()["backend"] == "redis"

    redis_server.stop()
    invalidated = api.post("/admin/cache/invalidate", json={"pipeline": "analytics"}, headers=admin)
    assert invalidated.status_code == 200
    assert api.get("/admin/cache", headers=admin).json()["backend"] == "memory"
    ready = api.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["redis"]["status"] == "degraded"

    redis_server.start()
    wait_until(
        lambda: api.get("/admin/cache", headers=admin).json()["backend"] == "redis", what="redis reuse"
    )
    assert api.get("/health/ready").json()["checks"]["redis"]["status"] == "ok"


def test_readiness_reaches_the_smtp_server_and_degrades_without_it(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], smtp, store_file
) -> None:
    from tests.servers import free_port

    port, received = smtp
    api = serve(make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False))
    check = api.get("/health/ready").json()["checks"]["smtp"]
    assert check["status"] == "ok" and received == []  # greeted, nothing sent
    away = serve(make_settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False))
    response = away.get("/health/ready")
    assert response.status_code == 200  # mail waits in the outbox: the service still serves
    assert response.json()["checks"]["smtp"]["status"] == "degraded"
