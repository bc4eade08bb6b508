"""Admin views of the cache."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel


class CachePipeline(StrEnum):
    """The pipelines whose results are cached: the first part of every cache key."""

    ANALYTICS = "analytics"
    ML = "ml"
    LINES = "lines"  # the sale-line snapshot every pipeline reads
    RATE_LIMIT = "ratelimit"


class CacheStatsPublic(BaseModel):
    hits: int
    misses: int
    redis_errors: int
    backend: Literal["redis", "memory"]
    redis_configured: bool


class CacheInvalidateRequest(BaseModel):
    """Which cached results to drop: a pipeline (e.g. `analytics`), or everything when omitted."""

    pipeline: CachePipeline | None = None


class CacheInvalidateResult(BaseModel):
    removed: int
