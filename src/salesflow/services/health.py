"""Readiness: each dependency checked concurrently with a short timeout."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from salesflow.models.health import DependencyCheck, Readiness

CHECK_TIMEOUT_SECONDS = 2.0
MIN_FREE_BYTES = 100 * 1024 * 1024


Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ReadinessChecks:
    """What readiness checks, handed over by the composition root (this module imports none of it)."""

    required: Mapping[str, Check]  # any failure: not ready (503)
    degradable: Mapping[str, Check] = field(default_factory=dict)  # a failure: `degraded`, still ready
    disabled: Mapping[str, str] = field(default_factory=dict)  # not configured: why


async def readiness(checks: ReadinessChecks) -> Readiness:
    """Every check at once, each with a short timeout."""
    named = {**checks.required, **checks.degradable}
    results = await asyncio.gather(*(_timed(name, check) for name, check in named.items()))
    by_name = {check.name: check for check in results}
    for name in checks.degradable:
        if by_name[name].status == "error":
            by_name[name] = by_name[name].model_copy(update={"status": "degraded"})
    for name, why in checks.disabled.items():
        by_name[name] = DependencyCheck(name=name, status="disabled", detail=why)
    ready = all(check.status in ("ok", "disabled", "degraded") for check in by_name.values())
    return Readiness(status="ready" if ready else "not_ready", checks=by_name)


def disk_check(folders: list[Path]) -> Check:
    async def check() -> None:
        await anyio.to_thread.run_sync(_check_disk, folders)

    return check


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


def _check_disk(folders: list[Path]) -> None:
    for folder in folders:
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise OSError(f"{folder.name or folder} is not a writable folder")
        if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
            raise OSError(f"less than {MIN_FREE_BYTES // 2**20} MiB free for {folder.name}")


def _describe(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    return detail if isinstance(detail, str) else type(exc).__name__
