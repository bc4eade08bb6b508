"""Real servers for the suite: uvicorn in a thread, and a private redis-server process."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp

from salesflow.metrics import EVENT_LOOP_LAG

STARTUP_DEADLINE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition, *, timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> None:
    """Poll `condition` until it is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


class UvicornThread:
    """An ASGI app served by uvicorn on a loopback port in a background thread (like httpx's test server)."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> UvicornThread:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        server = self._server
        wait_until(
            lambda: server.started or not self._thread.is_alive(),
            timeout=STARTUP_DEADLINE_SECONDS,
            what="uvicorn start",
        )
        if not server.started:
            raise RuntimeError("uvicorn failed to start (see the log)")
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STARTUP_DEADLINE_SECONDS)
            self._server = None


class RedisProcess:
    """A private redis-server on a free loopback port; never the machine's shared one."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A suite run under libfaketime (to check it passes on any date) keeps Redis on the real clock:
            # the preloaded library stops redis-server from starting.
            env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")},
        )
        wait_until(self._answers, timeout=STARTUP_DEADLINE_SECONDS, what="redis-server start")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def _answers(self) -> bool:
        with contextlib.suppress(redis.RedisError), self.client() as client:
            return bool(client.ping())
        return False


@contextmanager
def dev_server_process(data: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """`salesflow serve` in DEV mode (no demo Java port, no warm-ups, no scheduler) with `env` on top; its
    process and a client of its API, once it answers."""
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_"))},
        "DEV_MODE": "true",
        "DEV_JAVA_PORT": "0",
        "PORT": str(port),
        "DATA_DIR": str(data / "data"),
        "EXPORT_DIR": str(data / "exports"),
        "FORECAST_WARM_UP": "false",
        "IMPORT_WARM_UP": "false",
        "DEMAND_FORECASTS": "false",
        "SCHEDULER_ENABLED": "false",
        **env,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "salesflow.cli", "serve"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", trust_env=False) as api:
            wait_until(lambda: answers(api), timeout=50, what="the app")
            yield server, api
    finally:
        server.terminate()
        server.wait(30)


def late_loop_ticks(later_than: float = 1.0) -> float:
    """Ticks of this process's event loops (every app served here watches its own) that came more than
    `later_than` seconds late, so far: read before and after a request to see whether it stalled a loop.
    One collection: its cumulative buckets come from one pass, so a tick observed meanwhile counts in both."""
    [family] = EVENT_LOOP_LAG.collect()
    buckets = {float(s.labels["le"]): s.value for s in family.samples if s.name.endswith("_bucket")}
    return buckets[float("inf")] - buckets[later_than]


def answers(client: httpx.Client, path: str = "/health") -> bool:
    """Whether a server of ours answers 200 on `path` yet (for `wait_until`)."""
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


POSTGRES_ADMIN_DSN = os.environ.get(
    "SALESFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL (`make test` starts the server), dropped after;
    yields its SQLAlchemy URL."""
    import asyncio

    import asyncpg

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0
