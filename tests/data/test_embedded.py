"""The embedded store: deterministic realistic demo data, extension to today, and both write semantics."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from salesflow.data.sources.base import SaleInput, SaleItemInput
from salesflow.data.sources.embedded import EmbeddedStore, StoreLocked
from salesflow.errors import Conflict, NotFound
from tests.builders import TODAY

EVER = (datetime(2000, 1, 1), datetime(9999, 1, 1))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    store.seed_demo(today=TODAY, n_products=300, days=730, seed=42)
    return store


def test_seed_is_deterministic(tmp_path: Path) -> None:
    frames = []
    for name in ("a", "b"):
        store = EmbeddedStore(tmp_path / f"{name}.duckdb")
        store.seed_demo(today=TODAY, n_products=30, days=90, seed=3)
        frames.append((store.products(), store.sale_lines(*EVER)))
        store.close()
    pd.testing.assert_frame_equal(frames[0][0], frames[1][0])
    pd.testing.assert_frame_equal(frames[0][1], frames[1][1])


def test_demo_history_reaches_today_and_spans_two_years(demo: EmbeddedStore) -> None:
    lines = demo.sale_lines(*EVER)
    assert lines["sold_at"].min().date() == TODAY - timedelta(days=729)
    assert lines["sold_at"].max().date() == TODAY
    assert 300_000 < len(lines) < 600_000
    sale_totals = lines.groupby("sale_id").agg(total=("subtotal", "sum"), stated=("sale_total", "first"))
    np.testing.assert_allclose(sale_totals["total"], sale_totals["stated"], atol=0.011)
    np.testing.assert_allclose(lines["subtotal"], (lines["unit_price"] * lines["quantity"]).round(2))


def test_demo_catalogue_is_realistic(demo: EmbeddedStore) -> None:
    products = demo.products()
    assert len(products) == 300 and products["sku"].is_unique and products["name"].is_unique
    assert products["category"].nunique() == 8
    assert (products["stock_quantity"] == 0).sum() >= 3  # out of stock
    assert (products["stock_quantity"] < products["low_stock_threshold"]).sum() >= 10  # low stock
    nulls = (
        demo.cursor().execute("SELECT COUNT(*) FROM products WHERE low_stock_threshold IS NULL").fetchone()
    )
    assert nulls is not None and nulls[0] > 0  # Java allows null thresholds


def test_demo_history_has_the_shapes_a_shop_has(demo: EmbeddedStore) -> None:
    lines = demo.sale_lines(*EVER)
    daily = lines.groupby(lines["sold_at"].dt.normalize())["quantity"].sum()
    by_weekday = daily.groupby(pd.DatetimeIndex(daily.index).day_of_week).mean()
    assert by_weekday[5] > 1.3 * by_weekday[6]  # Saturday busy, Sunday quiet
    last_sale = lines.groupby("product_id")["sold_at"].max()
    stock = demo.products().set_index("product_id")["stock_quantity"]
    stale = last_sale[last_sale.dt.date < TODAY - timedelta(days=90)].index
    dead = [pid for pid in stale if stock.loc[pid] > 0]
    assert len(dead) >= 5  # dead stock
    days_selling = lines.groupby("product_id")["sold_at"].apply(lambda s: s.dt.date.nunique())
    assert (days_selling < 200).sum() >= 30  # intermittent and slow sellers
    events = demo.cursor().execute("SELECT day, product_id, kind FROM demo_events").df()
    zero_day = events.loc[events["kind"] == "ZERO_DROP", "day"].iloc[0]
    assert pd.Timestamp(zero_day) not in daily.index  # the injected zero day really has no sales


def test_history_is_extended_to_today_on_a_later_day(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "x.duckdb")
    store.seed_demo(today=TODAY, n_products=20, days=60, seed=1)
    before = store.sale_lines(*EVER)
    added = store.extend_demo(today=TODAY + timedelta(days=3))
    after = store.sale_lines(*EVER)
    assert added.sales_written > 0 and len(after) == len(before) + added.lines_written
    assert after["sold_at"].max().date() == TODAY + timedelta(days=3)
    assert after["sale_id"].is_monotonic_increasing
    assert store.extend_demo(today=TODAY + timedelta(days=3)).sales_written == 0


def test_embedded_writes_keep_their_own_dates_and_prices(store_file: Path) -> None:
    store = EmbeddedStore(store_file)
    sku = store.products()["sku"].iloc[0]
    stock_before = store.products()["stock_quantity"].iloc[0]
    when = datetime(2026, 3, 14, 10, 30)
    store.record_sales(
        [SaleInput(items=(SaleItemInput(quantity=3, sku=sku, unit_price=1.25),), sold_at=when)],
        semantics="embedded",
        now=datetime(2026, 11, 26),
    )
    line = store.sale_lines(when, when + timedelta(seconds=1))
    assert line[["sku", "quantity", "unit_price", "subtotal", "sale_total"]].values.tolist() == [
        [sku, 3, 1.25, 3.75, 3.75]
    ]
    assert store.products()["stock_quantity"].iloc[0] == stock_before  # history does not move stock
    store.close()


def test_java_semantics_roll_back_everything_on_shortage(store_file: Path) -> None:
    store = EmbeddedStore(store_file)
    products = store.products()
    count = len(store.sale_lines(*EVER))
    sales = [
        SaleInput(items=(SaleItemInput(quantity=1, product_id=1),)),
        SaleInput(items=(SaleItemInput(quantity=10**6, product_id=2),)),
    ]
    with pytest.raises(Conflict, match=f"Not enough stock for product {products['sku'].iloc[1]}"):
        store.record_sales(sales, semantics="java", now=datetime(2026, 11, 26, 12))
    with pytest.raises(NotFound, match="Product not found: sku NOPE"):
        store.record_sales(
            [SaleInput(items=(SaleItemInput(quantity=1, sku="NOPE"),))],
            semantics="java",
            now=datetime(2026, 11, 26, 12),
        )
    assert len(store.sale_lines(*EVER)) == count
    pd.testing.assert_frame_equal(store.products(), products)
    store.close()


def test_seed_demo_command_builds_a_store_of_the_requested_size(tmp_path: Path) -> None:
    # Without DEV mode and without any PROD setting (no JWT secret, no Java credentials).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_", "SYSTEM_"))}
    env["DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "salesflow.cli",
            "seed-demo",
            "--products",
            "50",
            "--days",
            "60",
            "--lines",
            "20000",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    connection = duckdb.connect(str(tmp_path / "salesflow.duckdb"), read_only=True)
    lines = connection.execute("SELECT COUNT(*) FROM sale_items").fetchone()
    products = connection.execute("SELECT COUNT(*) FROM products").fetchone()
    connection.close()
    assert products == (50,)
    assert lines is not None and 18_000 < lines[0] < 22_000


def test_a_second_process_is_told_the_store_is_in_use(store_file: Path) -> None:
    store = EmbeddedStore(store_file)
    code = (
        "from pathlib import Path; from salesflow.data.sources.embedded import EmbeddedStore; "
        f"EmbeddedStore(Path({str(store_file)!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (
        result.returncode != 0
        and "StoreLocked" in result.stderr
        and "in use by another process" in result.stderr
    )
    store.close()
    assert StoreLocked.__doc__
