"""Admin views of the cache."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CacheStatsPublic(BaseModel):
    hits: int
    misses: int
    redis_errors: int
    backend: Literal["redis", "memory"]
    redis_configured: bool


class CacheInvalidateRequest(BaseModel):
    """Which cached results to drop: a pipeline name (e.g. `analytics`), or everything when omitted."""

    pipeline: str | None = Field(default=None, pattern=r"^[a-z_]{1,40}$")


class CacheInvalidateResult(BaseModel):
    removed: int
