"""Builders shared by the tests."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path

import jwt
import numpy as np
import pandas as pd

from salesflow.data.sources.base import SaleInput, SaleItemInput
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import DEV_SECRET, ISSUER


def make_token(
    *, key: bytes | None = DEV_SECRET.encode(), algorithm: str = "HS256", **changes: object
) -> str:
    """A token shaped like Java's ADMIN access token; `changes` override claims (None removes one)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "0000000000",
        "iss": ISSUER,
        "role": "ADMIN",
        "username": "admin",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(changes)
    present = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(present, key, algorithm=algorithm, headers={"typ": None})


# The real public data sets (../shared/data, beside the project; CI lays a copy there too).
SHARED = Path(os.environ.get("SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))

RETAIL = SHARED / "data/retail/uci_online_retail.parquet"  # UCI Online Retail: a UK gift shop's lines
RETAIL_LAST_DAY = date(2011, 12, 9)


def read_retail_lines() -> pd.DataFrame:
    """The real shop's sale lines, cancellations, adjustments and returns left out."""
    raw = pd.read_parquet(RETAIL)
    kept = raw[~raw["InvoiceNo"].str.startswith(("C", "A")) & (raw["Quantity"] > 0) & (raw["UnitPrice"] >= 0)]
    return kept.reset_index(drop=True)


def load_retail_store(path: Path, raw: pd.DataFrame, *, stock: int = 25) -> pd.DataFrame:
    """The real lines in an embedded store, in the Java schema (StockCode → sku, InvoiceNo → sale,
    InvoiceDate → sale date), every product with `stock` units; the lines with their ids, as loaded."""
    codes = pd.Index(sorted(raw["StockCode"].unique()))
    raw = raw.assign(
        product_id=codes.get_indexer(raw["StockCode"]) + 1, sale_id=pd.factorize(raw["InvoiceNo"])[0] + 1
    )
    raw["subtotal"] = (raw["Quantity"] * raw["UnitPrice"]).round(2)
    last = raw.sort_values("InvoiceDate").groupby("product_id").last()
    products = pd.DataFrame(
        {
            "product_id": last.index,
            "name": last["Description"].replace("nan", "(no description)").to_numpy(),
            "sku": last["StockCode"].to_numpy(),
            "price": last["UnitPrice"].round(2).to_numpy(),
            "stock_quantity": stock,
            "description": None,
            "image_url": None,
            "low_stock_threshold": 10,
            "category": None,
        }
    )
    products["name"] = products["name"] + " #" + products["sku"]  # descriptions are not unique
    sales = (
        raw.groupby("sale_id")
        .agg(sale_date=("InvoiceDate", "first"), total_amount=("subtotal", "sum"))
        .reset_index()
    )
    items = pd.DataFrame(
        {
            "id": np.arange(1, len(raw) + 1),
            "sale_id": raw["sale_id"],
            "product_id": raw["product_id"],
            "product_name": raw["Description"],
            "sku": raw["StockCode"],
            "quantity": raw["Quantity"],
            "unit_price": raw["UnitPrice"],
            "subtotal": raw["subtotal"],
        }
    )
    store = EmbeddedStore(path)
    try:
        store.load(products, sales.rename(columns={"sale_id": "id"}), items)
    finally:
        store.close()
    return raw


# The suite's "today": every test that builds data or starts the app runs on this day, whatever the date
# CI runs on (SALESFLOW_TEST_TODAY moves it, to run the whole suite on another day).
TODAY = date.fromisoformat(os.environ.get("SALESFLOW_TEST_TODAY", "2026-03-18"))  # a Wednesday


def pinned_clock() -> datetime:
    """Noon UTC on TODAY: the clock given to every app, store and stand-in the suite builds."""
    return datetime.combine(TODAY, clock_time(12, 0), tzinfo=UTC)


class MovableClock:
    """A clock that starts at `pinned_clock()` and moves when a test sets `now`."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or pinned_clock()

    def __call__(self) -> datetime:
        return self.now


# A hand-checked shop (tests/services/test_sales_analytics.py works every number out by hand); its dates
# are absolute, so it is always seen on its own day.
HAND_TODAY = date(2026, 3, 18)
HAND_PRODUCTS = [
    # id, sku, name, category, price, stock, threshold (None = Java's null, read as 10)
    (1, "A-1", "Apple Juice", "Beverages", 2.00, 0, 10),
    (2, "B-1", "Bread", "Bakery", 3.00, 5, 10),
    (3, "C-1", "Candle", "Household", 10.00, 50, None),
    (4, "D-1", "Dish Soap", "Household", 4.00, 40, 5),
    (5, "E-1", "Eggs", "Dairy", 1.50, 30, 10),
    (6, "F-1", "Flour", "Bakery", 2.50, 100, 10),
]
HAND_SALES = [
    # sold at, [(sku, quantity, unit price)]
    (datetime(2025, 12, 8, 16, 0), [("C-1", 1, 10.00)]),
    (datetime(2026, 3, 6, 12, 0), [("A-1", 3, 2.00)]),
    (datetime(2026, 3, 10, 12, 0), [("D-1", 2, 4.00)]),
    (datetime(2026, 3, 12, 10, 0), [("A-1", 2, 2.00), ("B-1", 1, 3.00)]),
    (datetime(2026, 3, 12, 15, 30), [("D-1", 3, 4.00)]),
    (datetime(2026, 3, 14, 9, 0), [("A-1", 1, 2.00), ("F-1", 4, 2.50)]),
    (datetime(2026, 3, 18, 11, 0), [("B-1", 2, 3.00)]),
    (datetime(2026, 3, 18, 11, 45), [("D-1", 1, 4.00), ("A-1", 5, 1.80)]),  # before the clock (noon)
]


def hand_clock() -> datetime:
    """Noon UTC on HAND_TODAY."""
    return datetime.combine(HAND_TODAY, clock_time(12, 0), tzinfo=UTC)


def build_hand_store(path: Path) -> Path:
    """The hand-checked shop in an embedded store file."""
    store = EmbeddedStore(path)
    products = pd.DataFrame(
        HAND_PRODUCTS,
        columns=["product_id", "sku", "name", "category", "price", "stock_quantity", "low_stock_threshold"],
    ).assign(
        description=None,
        image_url=None,
        low_stock_threshold=lambda f: f["low_stock_threshold"].astype("Int64"),
    )
    empty_sales = pd.DataFrame({"id": [], "sale_date": [], "total_amount": []})
    empty_items = pd.DataFrame(
        columns=["id", "sale_id", "product_id", "product_name", "sku", "quantity", "unit_price", "subtotal"]
    )
    store.load(products, empty_sales, empty_items)
    sales = [
        SaleInput(
            items=tuple(SaleItemInput(quantity=q, sku=sku, unit_price=p) for sku, q, p in items), sold_at=when
        )
        for when, items in HAND_SALES
    ]
    store.record_sales(sales, semantics="embedded", now=hand_clock().replace(tzinfo=None))
    store.close()
    return path
