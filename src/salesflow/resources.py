"""Composition root: builds and closes the long-lived objects (settings → HTTP client, cache, data source).

The API lifespan, the CLI and the worker call `build_resources`; nothing connects at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import anyio
import httpx

from salesflow.clients.java import JavaClient
from salesflow.config import Settings
from salesflow.data.cache import Cache, MemoryBackend, RedisBackend
from salesflow.data.sources.base import DataSource
from salesflow.data.sources.embedded import EmbeddedDataSource, EmbeddedStore
from salesflow.data.sources.java import JavaDataSource
from salesflow.integration.jwt import TokenValidator

logger = logging.getLogger(__name__)


@dataclass
class Resources:
    """Everything a request, job or command needs beyond its own input."""

    settings: Settings
    cache: Cache
    data_source: DataSource
    token_validator: TokenValidator | None
    http: httpx.AsyncClient | None = None
    java: JavaClient | None = None
    store: EmbeddedStore | None = None

    async def aclose(self) -> None:
        await self.cache.aclose()
        await self.data_source.aclose()
        if self.http is not None:
            await self.http.aclose()


async def build_resources(settings: Settings) -> Resources:
    """Build every long-lived object from settings; the caller must `aclose()` the result."""
    for folder in (settings.data_dir, settings.export_dir):
        folder.mkdir(parents=True, exist_ok=True)
    cache = Cache(
        redis=RedisBackend.from_url(settings.redis_url) if settings.redis_url else None,
        memory=MemoryBackend(max_entries=settings.cache_memory_max_entries),
        redis_retry_seconds=settings.cache_redis_retry_seconds,
    )
    secret = settings.java_jwt_secret_bytes
    validator = (
        TokenValidator(secret=secret, issuer=settings.jwt_issuer, leeway_seconds=settings.jwt_leeway_seconds)
        if secret is not None
        else None
    )
    if settings.uses_java:
        http = build_java_http_client(settings)
        java = JavaClient(
            http=http,
            service_phone=settings.java_service_phone,
            service_password=settings.java_service_password,
            system_token=settings.system_jwt_token,
            read_retries=settings.java_read_retries,
        )
        source = JavaDataSource(
            java, timezone=ZoneInfo(settings.java_timezone), root_url=settings.java_root_url
        )
        return Resources(settings, cache, source, validator, http=http, java=java)
    store = await anyio.to_thread.run_sync(EmbeddedStore, settings.embedded_db_path)
    if settings.dev_mode:
        await anyio.to_thread.run_sync(ensure_demo_data, store, settings)
    embedded = EmbeddedDataSource(store, timezone=ZoneInfo(settings.java_timezone))
    return Resources(settings, cache, embedded, validator, store=store)


def build_java_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one pooled HTTP client per process for Java."""
    return httpx.AsyncClient(
        base_url=settings.java_api_url,
        timeout=httpx.Timeout(settings.java_timeout_seconds, connect=5.0),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        trust_env=False,  # never route the system of record through an environment proxy
    )


def ensure_demo_data(store: EmbeddedStore, settings: Settings) -> None:
    """Seed the demo history on first start, and extend it to today on later days."""
    today = datetime.now(ZoneInfo(settings.java_timezone)).date()
    if store.is_empty():
        logger.info("seeding demo data (first start)")
        result = store.seed_demo(
            today=today, n_products=settings.demo_products, days=settings.demo_days, seed=settings.demo_seed
        )
        logger.info("demo data seeded", extra={"sales": result.sales_written, "lines": result.lines_written})
        return
    result = store.extend_demo(today=today)
    if result.sales_written:
        logger.info("demo data extended to today", extra={"sales": result.sales_written})
