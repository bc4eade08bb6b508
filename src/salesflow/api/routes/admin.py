"""Operator routes (ADMIN only): cache counters and invalidation."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends

from salesflow.api.deps import CacheDep, require_roles
from salesflow.api.envelope import EnvelopeRoute
from salesflow.models.auth import Role
from salesflow.models.cache import CacheInvalidateRequest, CacheInvalidateResult, CacheStatsPublic

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_roles(Role.ADMIN))],
    route_class=EnvelopeRoute,
)


@router.get("/cache")
async def read_cache_stats(cache: CacheDep) -> CacheStatsPublic:
    """Hit/miss counters and which backend serves now."""
    return CacheStatsPublic(**asdict(cache.stats()))


@router.post("/cache/invalidate")
async def invalidate_cache(body: CacheInvalidateRequest, cache: CacheDep) -> CacheInvalidateResult:
    """Drop cached results of one pipeline, or all of them."""
    return CacheInvalidateResult(removed=await cache.invalidate(body.pipeline))
