"""The data-source port: products, sale lines in a time window, and writing new sales.

Services receive a `DataSource` and never know which adapter is behind it. Frames have fixed columns and
dtypes (`PRODUCT_COLUMNS`, `SALE_LINE_COLUMNS`) so that every adapter returns the same thing.
Timestamps are naive, in Java's local time (`JAVA_TIMEZONE`), exactly as the system of record stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import pandas as pd

from salesflow.models.auth import User

# Java's default when `lowStockThreshold` is null in its database (java-system-of-record.md).
DEFAULT_LOW_STOCK_THRESHOLD = 10

PRODUCT_COLUMNS: dict[str, str] = {
    "product_id": "int64",
    "sku": "string",
    "name": "string",
    "category": "string",
    "price": "float64",
    "stock_quantity": "int64",
    "low_stock_threshold": "int64",
}

SALE_LINE_COLUMNS: dict[str, str] = {
    "sale_id": "int64",
    "sold_at": "datetime64[us]",
    "product_id": "int64",
    "sku": "string",
    "name": "string",
    "quantity": "int64",
    "unit_price": "float64",
    "subtotal": "float64",
    "sale_total": "float64",
}


@dataclass(frozen=True)
class SaleItemInput:
    """One line of a sale to record; the product is named by id or SKU."""

    quantity: int
    product_id: int | None = None
    sku: str | None = None
    # Only the embedded store honours these; Java always uses its current price and "now".
    unit_price: float | None = None


@dataclass(frozen=True)
class SaleInput:
    """A sale to record: its lines and, where the adapter can keep it, its own timestamp."""

    items: tuple[SaleItemInput, ...]
    sold_at: datetime | None = None


@dataclass(frozen=True)
class WriteResult:
    """What a write stored."""

    sales_written: int
    lines_written: int
    sale_ids: list[int] = field(default_factory=list)


class DataSource(Protocol):
    """The port every adapter implements."""

    @property
    def kind(self) -> Literal["embedded", "java"]:
        """Which adapter this is (for logs and readiness only: services must not branch on it)."""
        ...

    async def products(self) -> pd.DataFrame:
        """Every product with stock and threshold; columns `PRODUCT_COLUMNS`."""
        ...

    async def sale_lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Sale lines with `start <= sold_at < end` (naive Java-local times); columns `SALE_LINE_COLUMNS`."""
        ...

    async def record_sales(self, sales: Sequence[SaleInput], *, user: User) -> WriteResult:
        """Record new sales all-or-nothing, on behalf of `user`."""
        ...

    async def check(self) -> None:
        """Raise if the source cannot serve requests now (used by readiness)."""
        ...

    async def aclose(self) -> None: ...


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """A frame with no rows and the port's dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Select and cast the port's columns, in order, so adapters agree to the dtype."""
    return frame.loc[:, list(columns)].astype(columns).reset_index(drop=True)
