"""Decoding of Java's JSON (camelCase) straight into the port's typed columns.

`/sales/history` is one large JSON array with no pagination, so this is a hot path: msgspec decodes into
typed structs in C, then the nested items are flattened into arrays once (docs/benchmarks.md compares this
with `json.loads` + `pandas.json_normalize`). The cyclic garbage collector is paused while millions of
short-lived objects are built: left on, its repeated passes cost about 4x the decoding itself.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
from msgspec import Struct, json

from salesflow.data.sources.base import (
    DEFAULT_LOW_STOCK_THRESHOLD,
    PRODUCT_COLUMNS,
    SALE_LINE_COLUMNS,
    conform,
    empty_frame,
)


class _SaleItem(Struct, rename="camel", kw_only=True, gc=False):
    product_id: int
    product_name: str | None = None
    sku: str | None = None
    quantity: int
    unit_price: float
    subtotal: float


class _Sale(Struct, rename="camel", kw_only=True, gc=False):
    id: int
    sale_date: str
    total_amount: float
    items: list[_SaleItem] = []


class _Product(Struct, rename="camel", kw_only=True, gc=False):
    id: int
    name: str
    sku: str
    price: float
    stock_quantity: int | None = None
    low_stock_threshold: int | None = None


class _InventoryItem(Struct, rename="camel", kw_only=True, gc=False):
    sku: str | None = None
    category: str | None = None


class _DailyQuantity(Struct, kw_only=True, gc=False):
    date: str
    quantity: int


class LoginReply(Struct, rename="camel", kw_only=True):
    """The part of `POST /auth/login`'s reply we use."""

    access_token: str


class ApiError(Struct, kw_only=True):
    """Java's error body."""

    status: int | None = None
    code: str | None = None
    message: str | None = None


_sales_decoder = json.Decoder(list[_Sale])
_products_decoder = json.Decoder(list[_Product])
_inventory_decoder = json.Decoder(list[_InventoryItem])
_daily_decoder = json.Decoder(list[_DailyQuantity])
login_decoder = json.Decoder(LoginReply)
api_error_decoder = json.Decoder(ApiError)


def decode_sale_lines(raw: bytes) -> pd.DataFrame:
    """`SaleResponse[]` → one row per item with `SALE_LINE_COLUMNS`."""
    with _gc_paused():
        return _sale_lines_frame(_sales_decoder.decode(raw))


def _sale_lines_frame(sales: list[_Sale]) -> pd.DataFrame:
    if not sales:
        return empty_frame(SALE_LINE_COLUMNS)
    items = [item for sale in sales for item in sale.items]
    counts = np.fromiter((len(s.items) for s in sales), np.int64, len(sales))
    n = len(items)
    sold_at = pd.to_datetime([s.sale_date for s in sales], format="ISO8601").to_numpy("datetime64[us]")
    return pd.DataFrame(
        {
            "sale_id": np.repeat(np.fromiter((s.id for s in sales), np.int64, len(sales)), counts),
            "sold_at": np.repeat(sold_at, counts),
            "product_id": np.fromiter((i.product_id for i in items), np.int64, n),
            "sku": _strings([i.sku for i in items]),
            "name": _strings([i.product_name for i in items]),
            "quantity": np.fromiter((i.quantity for i in items), np.int64, n),
            "unit_price": np.fromiter((i.unit_price for i in items), np.float64, n),
            "subtotal": np.fromiter((i.subtotal for i in items), np.float64, n),
            "sale_total": np.repeat(
                np.fromiter((s.total_amount for s in sales), np.float64, len(sales)), counts
            ),
        }
    )


def decode_daily_quantities(raw: bytes, *, start: date, end: date) -> pd.Series:
    """`[{date, quantity}]` (only days with sales) → a quantity for every day `start..end`, zeros included."""
    rows = _daily_decoder.decode(raw)
    days = pd.date_range(start, end, freq="D")
    observed = pd.Series(
        [r.quantity for r in rows], index=pd.to_datetime([r.date for r in rows]), dtype="int64"
    )
    return observed.groupby(level=0).sum().reindex(days, fill_value=0).rename("quantity")


def decode_products(raw_products: bytes, raw_inventory: bytes | None) -> pd.DataFrame:
    """`ProductDto[]` (+ `/inventory` for categories) → `PRODUCT_COLUMNS`; null thresholds become 10."""
    products = _products_decoder.decode(raw_products)
    categories: dict[str, str | None] = {}
    if raw_inventory is not None:
        categories = {i.sku: i.category for i in _inventory_decoder.decode(raw_inventory) if i.sku}
    frame = pd.DataFrame(
        {
            "product_id": [p.id for p in products],
            "sku": [p.sku for p in products],
            "name": [p.name for p in products],
            "category": [categories.get(p.sku) for p in products],
            "price": [p.price for p in products],
            "stock_quantity": [p.stock_quantity or 0 for p in products],
            "low_stock_threshold": [
                DEFAULT_LOW_STOCK_THRESHOLD if p.low_stock_threshold is None else p.low_stock_threshold
                for p in products
            ],
        }
    )
    if frame.empty:
        return empty_frame(PRODUCT_COLUMNS)
    return conform(frame.sort_values("product_id"), PRODUCT_COLUMNS)


def _strings(values: list[str | None]) -> pd.api.extensions.ExtensionArray:
    """A pandas `string` array built through Arrow (about twice as fast as from Python objects)."""
    strings: pd.api.extensions.ExtensionArray = pd.array(pa.array(values, type=pa.string()), dtype="string")
    return strings


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC (these objects hold no cycles); restore it as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
