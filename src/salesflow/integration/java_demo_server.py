"""DEV mode only: serve the Java-compatible demo API on loopback beside the service, from the service's own
demo store, so that the frontend works against `make run` alone and its product ids agree with ours."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(_serve(server))
    with contextlib.suppress(
        TimeoutError
    ):  # listening before the service says it is up (uvicorn has no event)
        async with asyncio.timeout(5):
            while not (server.started or task.done()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
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


async def _serve(server: _Server) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot bind: the service runs on without the demo
        logger.warning("the demo Java API could not start (port %d taken?)", server.config.port)
