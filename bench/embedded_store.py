"""Read path of the embedded store: a window of >= 1M sale lines into the port's DataFrame.

DuckDB (the chosen store) against SQLite holding the same rows with an index on the sale date, both read
through the same SQL into a pandas frame with the port's dtypes. Prints one JSON line.

    .venv/bin/python -m bench.embedded_store [--lines 1000000] [--products 500] [--days 730]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from bench.common import emit, median_seconds
from salesflow.data.sources.base import SALE_LINE_COLUMNS, conform
from salesflow.data.sources.embedded import _SALE_LINES_SQL, EmbeddedStore


def build_sqlite(store: EmbeddedStore, path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    connection.executescript("""
        CREATE TABLE sales (id INTEGER PRIMARY KEY, sale_date TEXT NOT NULL, total_amount REAL NOT NULL);
        CREATE TABLE sale_items (id INTEGER PRIMARY KEY, sale_id INTEGER NOT NULL,
            product_id INTEGER NOT NULL, product_name TEXT NOT NULL, sku TEXT NOT NULL,
            quantity INTEGER NOT NULL, unit_price REAL NOT NULL, subtotal REAL NOT NULL);
        CREATE INDEX sales_date ON sales (sale_date);
        CREATE INDEX items_sale ON sale_items (sale_id);
    """)
    sales = (
        store.cursor()
        .execute("SELECT id, strftime(sale_date, '%Y-%m-%d %H:%M:%S.%f'), total_amount FROM sales")
        .fetchall()
    )
    items = store.cursor().execute("SELECT * FROM sale_items").fetchall()
    connection.executemany("INSERT INTO sales VALUES (?, ?, ?)", sales)
    connection.executemany("INSERT INTO sale_items VALUES (?, ?, ?, ?, ?, ?, ?, ?)", items)
    connection.commit()
    return connection


def read_sqlite(connection: sqlite3.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    sql = _SALE_LINES_SQL.replace("?", ":start", 1).replace("?", ":end", 1)
    frame = pd.read_sql_query(sql, connection, params={"start": str(start), "end": str(end)})
    frame["sold_at"] = pd.to_datetime(frame["sold_at"], format="ISO8601")
    return conform(frame, SALE_LINE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder) / "bench.duckdb")
        seeded = store.seed_demo(
            today=date.today(), n_products=args.products, days=args.days, seed=42, target_lines=args.lines
        )
        start, end = datetime(2000, 1, 1), datetime(9999, 1, 1)
        sqlite = build_sqlite(store, Path(folder) / "bench.sqlite")
        duck = store.sale_lines(start, end)
        lite = read_sqlite(sqlite, start, end)
        pd.testing.assert_frame_equal(duck, lite, check_exact=False)  # same rows, same dtypes
        duckdb_s = median_seconds(lambda: store.sale_lines(start, end), repeat=args.repeat)
        sqlite_s = median_seconds(lambda: read_sqlite(sqlite, start, end), repeat=args.repeat)
        quarter = (pd.Timestamp(date.today()) - pd.Timedelta(days=90)).to_pydatetime()
        duck_q = median_seconds(lambda: store.sale_lines(quarter, end), repeat=args.repeat)
        lite_q = median_seconds(lambda: read_sqlite(sqlite, quarter, end), repeat=args.repeat)
        store.close()
        sqlite.close()
    emit(
        "embedded_store_read",
        {
            "lines": seeded.lines_written,
            "window_all": {
                "duckdb_s": round(duckdb_s, 3),
                "sqlite_s": round(sqlite_s, 3),
                "sqlite_over_duckdb": round(sqlite_s / duckdb_s, 1),
            },
            "window_90_days": {
                "lines": len(duck[duck["sold_at"] >= quarter]),
                "duckdb_s": round(duck_q, 3),
                "sqlite_s": round(lite_q, 3),
                "sqlite_over_duckdb": round(lite_q / duck_q, 1),
            },
        },
    )


if __name__ == "__main__":
    main()
