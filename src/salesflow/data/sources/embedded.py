"""Embedded store: a DuckDB file under `DATA_DIR` with the Java schema (products, sales, sale_items).

DuckDB was chosen over SQLite by measuring the read path of a 1M-line window (docs/benchmarks.md).
DuckDB allows one writing process per file: the server owns it while it runs, so `salesflow seed-demo`
must run before `serve` (it says so if the file is locked).
Calls are blocking; the async `DataSource` methods run them in worker threads, each on its own cursor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import anyio
import duckdb
import pandas as pd

from salesflow.data import demo
from salesflow.data.sources.base import (
    DEFAULT_LOW_STOCK_THRESHOLD,
    PRODUCT_COLUMNS,
    SALE_LINE_COLUMNS,
    SaleInput,
    WriteResult,
    conform,
)
from salesflow.errors import Conflict, InvalidInput, NotFound, UpstreamUnavailable
from salesflow.models.auth import User

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id BIGINT PRIMARY KEY, name VARCHAR NOT NULL, sku VARCHAR NOT NULL UNIQUE, price DECIMAL(12, 2) NOT NULL,
    stock_quantity INTEGER NOT NULL, description VARCHAR, image_url VARCHAR, low_stock_threshold INTEGER,
    category VARCHAR
);
CREATE TABLE IF NOT EXISTS sales (
    id BIGINT NOT NULL, sale_date TIMESTAMP NOT NULL, total_amount DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS sale_items (
    id BIGINT NOT NULL, sale_id BIGINT NOT NULL, product_id BIGINT NOT NULL, product_name VARCHAR NOT NULL,
    sku VARCHAR NOT NULL, quantity INTEGER NOT NULL, unit_price DOUBLE NOT NULL, subtotal DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS demo_events (day DATE, product_id BIGINT, kind VARCHAR, factor DOUBLE);
"""

_SALE_LINES_SQL = """
SELECT i.sale_id, s.sale_date AS sold_at, i.product_id, i.sku, i.product_name AS name, i.quantity,
       i.unit_price, i.subtotal, s.total_amount AS sale_total
FROM sales s JOIN sale_items i ON i.sale_id = s.id
WHERE s.sale_date >= ? AND s.sale_date < ?
ORDER BY s.sale_date, i.id
"""

_PRODUCTS_SQL = """
SELECT id AS product_id, sku, name, category, CAST(price AS DOUBLE) AS price, stock_quantity,
       COALESCE(low_stock_threshold, ?) AS low_stock_threshold
FROM products ORDER BY id
"""


_PRODUCT_TABLE_COLUMNS = [
    "product_id",
    "name",
    "sku",
    "price",
    "stock_quantity",
    "description",
    "image_url",
    "low_stock_threshold",
    "category",
]
_ITEM_TABLE_COLUMNS = [
    "id",
    "sale_id",
    "product_id",
    "product_name",
    "sku",
    "quantity",
    "unit_price",
    "subtotal",
]


class StoreLocked(Exception):
    """Raised when another process holds the DuckDB file."""


class EmbeddedStore:
    """The DuckDB file and every query on it (blocking; see `EmbeddedDataSource` for the async port)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            raise StoreLocked(f"{path} is in use by another process (stop the server first)") from exc
        self._write_lock = threading.Lock()
        self._connection.execute(_SCHEMA)

    def close(self) -> None:
        self._connection.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared across threads)."""
        return self._connection.cursor()

    # Reads

    def products(self) -> pd.DataFrame:
        frame = self.cursor().execute(_PRODUCTS_SQL, [DEFAULT_LOW_STOCK_THRESHOLD]).df()
        return conform(frame, PRODUCT_COLUMNS)

    def sale_lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        frame = self.cursor().execute(_SALE_LINES_SQL, [start, end]).df()
        return conform(frame, SALE_LINE_COLUMNS)

    def meta(self) -> dict[str, str]:
        rows = self.cursor().execute("SELECT key, value FROM store_meta").fetchall()
        return {str(key): str(value) for key, value in rows}

    def ping(self) -> None:
        self.cursor().execute("SELECT 1").fetchall()

    # Writes

    def record_sales(
        self, sales: Sequence[SaleInput], *, semantics: Literal["embedded", "java"], now: datetime
    ) -> WriteResult:
        """Insert sales all-or-nothing.

        `embedded` keeps each sale's own timestamp and prices; `java` mirrors Java's rules: current catalogue
        price, server "now", stock decremented, any unknown product or shortage rolls back everything.
        """
        if not sales:
            return WriteResult(sales_written=0, lines_written=0)
        with self._write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                result = self._insert_sales(cur, sales, semantics, now)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            return result

    def _insert_sales(
        self,
        cur: duckdb.DuckDBPyConnection,
        sales: Sequence[SaleInput],
        semantics: str,
        now: datetime,
    ) -> WriteResult:
        rows = cur.execute("SELECT id, sku, CAST(price AS DOUBLE), stock_quantity FROM products").fetchall()
        catalog = {int(id_): (str(sku), float(price), int(stock)) for id_, sku, price, stock in rows}
        id_of_sku = {sku: id_ for id_, (sku, _, _) in catalog.items()}
        next_sale = int(cur.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM sales").fetchone()[0])  # type: ignore[index]
        next_item = int(cur.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM sale_items").fetchone()[0])  # type: ignore[index]
        sale_rows: list[tuple[int, datetime, float]] = []
        item_rows: list[tuple[int, int, int, int, float, float]] = []
        used: dict[int, int] = {}
        for row, sale in enumerate(sales, start=1):
            total = 0.0
            sale_id = next_sale + row - 1
            for item in sale.items:
                product_id = _resolve_product(item.product_id, item.sku, catalog, id_of_sku)
                if item.quantity < 1:
                    raise InvalidInput(
                        "quantity must be a whole number >= 1",
                        field="quantity",
                        row=row,
                        value=item.quantity,
                    )
                used[product_id] = used.get(product_id, 0) + item.quantity
                price = catalog[product_id][1]
                if semantics == "embedded" and item.unit_price is not None:
                    price = item.unit_price
                subtotal = round(price * item.quantity, 2)
                total += subtotal
                item_rows.append(
                    (
                        next_item + len(item_rows),
                        sale_id,
                        product_id,
                        item.quantity,
                        price,
                        subtotal,
                    )
                )
            sold_at = now if semantics == "java" or sale.sold_at is None else sale.sold_at
            sale_rows.append((sale_id, sold_at, round(total, 2)))
        if semantics == "java":
            for product_id, quantity in used.items():
                sku, _, stock = catalog[product_id]
                if quantity > stock:
                    raise Conflict(f"Not enough stock for product {sku}")
            cur.executemany(
                "UPDATE products SET stock_quantity = stock_quantity - ? WHERE id = ?",
                [(q, p) for p, q in used.items()],
            )
        cur.executemany("INSERT INTO sales VALUES (?, ?, ?)", sale_rows)
        items = pd.DataFrame(
            item_rows, columns=["id", "sale_id", "product_id", "quantity", "unit_price", "subtotal"]
        )
        cur.register("new_items", items)
        cur.execute("""
            INSERT INTO sale_items
            SELECT n.id, n.sale_id, n.product_id, p.name, p.sku, n.quantity, n.unit_price, n.subtotal
            FROM new_items n JOIN products p ON p.id = n.product_id ORDER BY n.id
        """)
        cur.unregister("new_items")
        return WriteResult(
            sales_written=len(sale_rows),
            lines_written=len(item_rows),
            sale_ids=[r[0] for r in sale_rows],
        )

    # Demo data

    def is_empty(self) -> bool:
        row = self.cursor().execute("SELECT COUNT(*) FROM products").fetchone()
        return row is None or int(row[0]) == 0

    def seed_demo(
        self, *, today: date, n_products: int, days: int, seed: int, target_lines: int | None = None
    ) -> WriteResult:
        """Replace the store's content with a demo history ending today."""
        start = today - timedelta(days=days - 1)
        catalog = demo.build_catalog(n_products=n_products, start=start, days=days, seed=seed)
        scale = 1.0
        if target_lines is not None:
            expected = demo.expected_demand(catalog, 0, days, days) / catalog.profile["mean_qty"].to_numpy()
            scale = target_lines / max(float(expected.sum()), 1.0)
        history = demo.generate_history(catalog, first_day=0, n_days=days, total_days=days, scale=scale)
        products = catalog.products.assign(
            stock_quantity=demo.stock_levels(catalog, days, seed), image_url=None
        )
        meta = {
            "seed": seed,
            "products": n_products,
            "start": start.isoformat(),
            "days": days,
            "scale": scale,
            "seeded_through": today.isoformat(),
        }
        return self.load(products, history.sales, history.items, events=history.events, meta=meta)

    def load(
        self,
        products: pd.DataFrame,
        sales: pd.DataFrame,
        items: pd.DataFrame,
        *,
        events: pd.DataFrame | None = None,
        meta: dict[str, object] | None = None,
    ) -> WriteResult:
        """Replace the store's content in one transaction (demo data, real data sets for tests and benches).

        `products`: product_id, name, sku, price, stock_quantity, description, image_url, low_stock_threshold,
        category; `sales`: id, sale_date, total_amount; `items`: id, sale_id, product_id, product_name, sku,
        quantity, unit_price, subtotal.
        """
        with self._write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            for table in ("sale_items", "sales", "products", "store_meta", "demo_events"):
                cur.execute(f"DELETE FROM {table}")
            _insert_frame(cur, "products", products[_PRODUCT_TABLE_COLUMNS])
            _insert_frame(cur, "sales", sales[["id", "sale_date", "total_amount"]])
            _insert_frame(cur, "sale_items", items[_ITEM_TABLE_COLUMNS])
            if events is not None:
                _insert_frame(cur, "demo_events", events)
            rows = [(k, str(v)) for k, v in (meta or {}).items()]
            if rows:
                cur.executemany("INSERT INTO store_meta VALUES (?, ?)", rows)
            cur.execute("COMMIT")
        return WriteResult(sales_written=len(sales), lines_written=len(items))

    def extend_demo(self, *, today: date) -> WriteResult:
        """Generate demo sales for the days between the last seeded day and today."""
        meta = self.meta()
        if "seeded_through" not in meta:
            return WriteResult(sales_written=0, lines_written=0)
        through = date.fromisoformat(meta["seeded_through"])
        if through >= today:
            return WriteResult(sales_written=0, lines_written=0)
        start = date.fromisoformat(meta["start"])
        days = int(meta["days"])
        catalog = demo.build_catalog(
            n_products=int(meta["products"]), start=start, days=days, seed=int(meta["seed"])
        )
        with self._write_lock:
            cur = self.cursor()
            next_sale, next_item = cur.execute(
                "SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM sales),"
                " (SELECT COALESCE(MAX(id), 0) + 1 FROM sale_items)"
            ).fetchone() or (1, 1)
            history = demo.generate_history(
                catalog,
                first_day=(through - start).days + 1,
                n_days=(today - through).days,
                total_days=days,
                scale=float(meta["scale"]),
                first_sale_id=int(next_sale),
                first_item_id=int(next_item),
            )
            cur.execute("BEGIN TRANSACTION")
            _insert_frame(cur, "sales", history.sales)
            _insert_frame(cur, "sale_items", history.items[_ITEM_TABLE_COLUMNS])
            cur.execute("UPDATE store_meta SET value = ? WHERE key = 'seeded_through'", [today.isoformat()])
            cur.execute("COMMIT")
        return WriteResult(sales_written=len(history.sales), lines_written=len(history.items))


class EmbeddedDataSource:
    """The `DataSource` port on the embedded store."""

    kind: Literal["embedded"] = "embedded"

    def __init__(self, store: EmbeddedStore, *, timezone: ZoneInfo, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.timezone = timezone
        self.clock = clock

    async def products(self) -> pd.DataFrame:
        return await anyio.to_thread.run_sync(self.store.products)

    async def sale_lines(self, start: datetime, end: datetime) -> pd.DataFrame:
        # A demo day is generated whole: its later sales are not made yet.
        end = min(end, self._now() + timedelta(microseconds=1))
        return await anyio.to_thread.run_sync(self.store.sale_lines, start, end)

    async def record_sales(self, sales: Sequence[SaleInput], *, user: User) -> WriteResult:
        def write() -> WriteResult:
            return self.store.record_sales(sales, semantics="embedded", now=self._now())

        return await anyio.to_thread.run_sync(write)

    def _now(self) -> datetime:
        """The store's time: naive, in its zone (as Java's)."""
        return self.clock().astimezone(self.timezone).replace(tzinfo=None)

    async def check(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.store.ping)
        except duckdb.Error as exc:
            raise UpstreamUnavailable("embedded store is not readable") from exc

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.store.close)


def _resolve_product(
    product_id: int | None,
    sku: str | None,
    catalog: dict[int, tuple[str, float, int]],
    id_of_sku: dict[str, int],
) -> int:
    if product_id is not None and product_id in catalog:
        return int(product_id)
    if product_id is None and sku is not None and sku in id_of_sku:
        return int(id_of_sku[sku])
    raise NotFound(
        f"Product not found: {'id ' + str(product_id) if product_id is not None else 'sku ' + str(sku)}"
    )


def _insert_frame(cur: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    cur.register("incoming", frame)
    cur.execute(f"INSERT INTO {table} SELECT * FROM incoming")
    cur.unregister("incoming")
