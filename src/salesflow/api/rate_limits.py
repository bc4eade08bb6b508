"""Per-caller rate limits, counted in the cache (shared by every process through Redis when present).

Two limits: failed authentications per client address (`RATE_LIMIT_AUTH_FAILURES` a minute: a token guesser
gets 429s instead of answers), and expensive requests per user (`RATE_LIMIT_EXPENSIVE` a minute: forecasts,
anomaly scans, imports, report jobs). Over a limit: 429 with `Retry-After`, the seconds until the window that
the first counted request opened ends.
"""

from __future__ import annotations

import math

from salesflow.data.cache import Cache, cache_key
from salesflow.errors import TooManyRequests
from salesflow.models.cache import CachePipeline

WINDOW_SECONDS = 60
AUTH_FAILURES = "auth-failures"
EXPENSIVE = "expensive"


async def count_request(cache: Cache, bucket: str, identity: str, *, limit: int, what: str) -> None:
    """Count one request of `identity` in `bucket`; 429 once the window holds more than `limit`."""
    count, left = await cache.count(cache_key(CachePipeline.RATE_LIMIT, bucket, who=identity), WINDOW_SECONDS)
    if count > limit:
        retry_after = max(math.ceil(left), 1)
        raise TooManyRequests(
            f"Too many {what}: at most {limit} a minute; try again in {retry_after} s",
            retry_after=retry_after,
        )
