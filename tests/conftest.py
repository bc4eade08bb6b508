"""Real components for the suite: a private Redis, the Java stand-in over HTTP, and the app on uvicorn."""

from __future__ import annotations

import email
import shutil
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from salesflow.api.main import create_app
from salesflow.config import Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import DEV_SECRET, StandinState, create_standin
from tests.builders import TODAY, pinned_clock
from tests.servers import RedisProcess, UvicornThread, free_port, postgres_database

# A small store: enough history for every pipeline, quick to seed.
SMALL_STORE = {"n_products": 40, "days": 120, "seed": 7}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> Iterator[str]:
    """The private Redis, restarted if a previous test stopped it, and emptied after each test."""
    if not redis_server._answers():
        redis_server.start()
    yield redis_server.url
    if redis_server._answers():
        with redis_server.client() as client:
            client.flushdb()  # our private server only, never the machine's shared one


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own on the machine's PostgreSQL, dropped at the end."""
    with postgres_database("salesflow_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The state database on both engines the service supports (a fresh schema for each test)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite3'}"
    return _reset_postgres(request.getfixturevalue("postgres_url"))


def _reset_postgres(url: str) -> str:
    import asyncio

    import asyncpg

    async def reset() -> None:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

    asyncio.run(reset())
    return url


@pytest.fixture(scope="session")
def seeded_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo store seeded once per session; tests copy it before writing."""
    path = tmp_path_factory.mktemp("store") / "template.duckdb"
    store = EmbeddedStore(path)
    store.seed_demo(today=TODAY, **SMALL_STORE)
    store.close()
    return path


@pytest.fixture
def store_file(seeded_store_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data" / "salesflow.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(seeded_store_file, path)
    return path


@pytest.fixture
def standin(tmp_path: Path, seeded_store_file: Path) -> Iterator[tuple[UvicornThread, StandinState]]:
    """The Java stand-in on its own copy of the demo store, served over HTTP."""
    path = tmp_path / "java" / "java.duckdb"
    path.parent.mkdir(parents=True)
    shutil.copy(seeded_store_file, path)
    state = StandinState(store=EmbeddedStore(path), clock=pinned_clock)
    server = UvicornThread(create_standin(state)).start()
    yield server, state
    server.stop()
    state.store.close()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings isolated from the developer's environment and `.env`."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "dev_mode": False,
            "app_env": "test",
            "java_jwt_secret": DEV_SECRET,
            "data_source": "embedded",
            "redis_url": None,
            "data_dir": tmp_path / "data",
            "export_dir": tmp_path / "exports",
            "outbox_dir": tmp_path / "outbox",
            "cache_redis_retry_seconds": 0.05,
            "java_timeout_seconds": 5.0,
            "demand_forecasts": False,  # deterministic stock figures; tests/services/ml turn it on
            "forecast_warm_up": False,  # 1-2 s of CPU per app start; tests/services/ml test it
            "import_warm_up": False,  # likewise
            # No schedules fired and no start-up alert check behind a test's back (tests that need them
            # turn the scheduler on).
            "scheduler_enabled": False,
            # Counts that outlive a test (in the shared Redis) would refuse the next test's requests: rate
            # limits are off unless a test turns them on (tests/api/test_operations.py).
            "rate_limit_auth_failures": 0,
            "rate_limit_expensive": 0,
            "report_jobs_per_user": 1000,  # tests submit bursts; tests/api/test_reports.py tests the bound
            "dev_java_port": 0,  # DEV apps start no demo Java API unless a test asks (test_java_demo.py)
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def prod_settings(
    make_settings: Callable[..., Settings], standin: tuple[UvicornThread, StandinState], redis_url: str
) -> Settings:
    """PROD mode: JWT auth, the Java stand-in as data source, the private Redis as cache."""
    server, _ = standin
    return make_settings(
        data_source="java",
        java_api_url=f"{server.url}/api/v1",
        java_service_phone="0000000000",
        java_service_password="password",
        redis_url=redis_url,
    )


@pytest.fixture
def serve() -> Iterator[Callable[[Settings | FastAPI], httpx.Client]]:
    """Serve the app (built from settings on the pinned clock, or given) on uvicorn; returns a client."""
    servers: list[UvicornThread] = []
    clients: list[httpx.Client] = []

    def start(target: Settings | FastAPI) -> httpx.Client:
        app = create_app(target, clock=pinned_clock) if isinstance(target, Settings) else target
        server = UvicornThread(app).start()
        servers.append(server)
        client = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30, trust_env=False)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


@pytest.fixture
def tokens(standin: tuple[UvicornThread, StandinState]) -> dict[str, str]:
    """Real access tokens issued by the stand-in for its ADMIN and USER."""
    _, state = standin
    return {
        "ADMIN": state.issue_access_token(state.users["0000000000"]),
        "USER": state.issue_access_token(state.users["0600000001"]),
    }


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Message]]]:
    """A real SMTP server (aiosmtpd) on loopback: its port and the messages it received."""
    received: list[Message] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            received.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()
