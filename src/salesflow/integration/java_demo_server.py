"""DEV mode only: serve the Java-compatible demo API on loopback beside the service, from the service's own
demo store, so that the frontend works against `make run` alone and its product ids agree with ours."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Generator
from zoneinfo import ZoneInfo

import uvicorn

from salesflow.config import Settings
from salesflow.data.sale_lines import Clock
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import StandinState, create_standin

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the service's own server handles SIGTERM and SIGINT, and stops this one


@contextlib.asynccontextmanager
async def java_demo(store: EmbeddedStore, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    """The demo Java API on `127.0.0.1:DEV_JAVA_PORT` while the block runs (a taken port: only a warning)."""
    state = StandinState(
        store=store, timezone=ZoneInfo(settings.source.timezone), clock=clock, record_requests=False
    )
    app = create_standin(state, cors_origins=settings.http.cors_origins)
    config = uvicorn.Config(
        app, host=LOOPBACK, port=settings.java.demo_port, log_level="warning", lifespan="off"
    )
    try:
        # Bound and listening before the service says it is up: a client's first call waits in the backlog
        # until uvicorn accepts it (uvicorn has no "started" event to await).
        listening = socket.create_server((LOOPBACK, settings.java.demo_port), backlog=config.backlog)
    except OSError as exc:  # the service runs on without the demo
        logger.warning("the demo Java API could not start on port %d: %s", settings.java.demo_port, exc)
        yield
        return
    with listening:
        server = _Server(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[listening]))
        logger.warning(
            "DEV MODE: demo Java API on http://127.0.0.1:%d/api/v1 (accounts 0000000000/password ADMIN,"
            " 0600000001/secret-user USER)",
            settings.java.demo_port,
        )
        try:
            yield
        finally:
            server.should_exit = True
            await task
