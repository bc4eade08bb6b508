"""Readiness: each dependency checked concurrently with a short timeout."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from salesflow.models.health import DependencyCheck, Readiness
from salesflow.resources import Resources

CHECK_TIMEOUT_SECONDS = 2.0
MIN_FREE_BYTES = 100 * 1024 * 1024


async def readiness(resources: Resources) -> Readiness:
    """Data source and disk must be OK; Redis down is `degraded` (the in-process cache takes over)."""
    settings = resources.settings
    checks = await asyncio.gather(
        _timed("data_source", resources.data_source.check),
        _timed("redis", lambda: _check_redis(resources)),
        _timed(
            "disk", lambda: anyio.to_thread.run_sync(_check_disk, [settings.data_dir, settings.export_dir])
        ),
    )
    by_name = {check.name: check for check in checks}
    if resources.cache.redis is None:
        by_name["redis"] = DependencyCheck(name="redis", status="disabled", detail="REDIS_URL not set")
    elif by_name["redis"].status == "error":
        by_name["redis"] = by_name["redis"].model_copy(update={"status": "degraded"})
    ready = all(check.status in ("ok", "disabled", "degraded") for check in by_name.values())
    return Readiness(status="ready" if ready else "not_ready", checks=by_name)


async def _timed(name: str, check: Callable[[], Awaitable[None]]) -> DependencyCheck:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return DependencyCheck(
            name=name, status="error", detail=f"no answer within {CHECK_TIMEOUT_SECONDS} s"
        )
    except Exception as exc:  # a readiness probe reports every failure instead of raising
        return DependencyCheck(name=name, status="error", detail=_describe(exc))
    return DependencyCheck(
        name=name, status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 1)
    )


async def _check_redis(resources: Resources) -> None:
    if resources.cache.redis is not None:
        await resources.cache.redis.ping()


def _check_disk(folders: list[Path]) -> None:
    for folder in folders:
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise OSError(f"{folder.name or folder} is not a writable folder")
        if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
            raise OSError(f"less than {MIN_FREE_BYTES // 2**20} MiB free for {folder.name}")


def _describe(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    return detail if isinstance(detail, str) else type(exc).__name__
