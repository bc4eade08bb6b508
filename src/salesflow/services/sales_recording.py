"""Recording new sales through this service: write through the port, then drop what the write made stale."""

from __future__ import annotations

from collections.abc import Sequence

from salesflow.data.cache import Cache
from salesflow.data.sale_lines import SaleLineCache
from salesflow.data.sources.base import DataSource, SaleInput, WriteResult
from salesflow.models.auth import User
from salesflow.models.cache import CachePipeline

# Pipelines whose cached results depend on sales.
DEPENDENT_PIPELINES = (CachePipeline.ANALYTICS, CachePipeline.ML)


class SalesRecorder:
    """The one way this service writes sales (imports use it)."""

    def __init__(self, source: DataSource, lines: SaleLineCache, cache: Cache) -> None:
        self.source = source
        self.lines = lines
        self.cache = cache

    async def record(self, sales: Sequence[SaleInput], *, user: User) -> WriteResult:
        """Write `sales` on behalf of `user`; analytics and forecasts are recomputed on their next read."""
        result = await self.source.record_sales(sales, user=user)
        self.lines.invalidate(full=any(sale.sold_at is not None for sale in sales))
        for pipeline in DEPENDENT_PIPELINES:
            await self.cache.invalidate(pipeline)
        return result
