"""The `DataSource` port on the Java system of record (PROD)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd

from salesflow.data.sources.base import SALE_LINE_COLUMNS, SaleInput, WriteResult, empty_frame
from salesflow.data.sources.java_client import JavaClient
from salesflow.errors import UpstreamRejected
from salesflow.models.auth import User


class JavaDataSource:
    """Reads under the service account; writes with the caller's own token (Java's rules apply to them)."""

    kind: Literal["java"] = "java"

    def __init__(
        self, client: JavaClient, *, timezone: ZoneInfo, root_url: str, clock: Callable[[], datetime]
    ) -> None:
        self.client = client
        self.timezone = timezone
        self.root_url = root_url
        self.clock = clock

    async def products(self) -> pd.DataFrame:
        return await self.client.products()

    async def sale_lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        # Java has no window query: `/sales/history?days=N` starts at the beginning of (its today - N days).
        today = self.clock().astimezone(self.timezone).date()
        days = (today - start.date()).days
        if days < 0 or end <= start:
            return empty_frame(SALE_LINE_COLUMNS)
        lines = await self.client.sale_history(days)
        in_window = (lines["sold_at"] >= start) & (lines["sold_at"] < end)
        return lines.loc[in_window].sort_values(["sold_at", "sale_id"], kind="stable").reset_index(drop=True)

    async def record_sales(self, sales: Sequence[SaleInput], *, user: User) -> WriteResult:
        token = user.token.get_secret_value() if user.token else await self.client.account.token()
        await self.client.bulk_sales(sales, token=token)
        return WriteResult(sales_written=len(sales), lines_written=sum(len(s.items) for s in sales))

    async def check(self) -> None:
        """Java answers, and the service account can log in: every aggregate read needs both."""
        await self.client.actuator_health(self.root_url)
        try:
            await self.client.account.token()
        except UpstreamRejected as exc:
            raise UpstreamRejected(
                f"Java authentication of the service account failed: {exc.detail}", status=exc.status
            ) from exc

    async def aclose(self) -> None:
        """The shared HTTP client is closed by its owner (`Resources`)."""
