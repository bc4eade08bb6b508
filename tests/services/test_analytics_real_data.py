"""Analytics on the demo store and on a real shop's lines, against independent computations."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from salesflow.config import Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.models.analytics import Period, SalesQuery
from salesflow.models.reports import ReportType
from salesflow.resources import Resources, open_resources
from salesflow.services.analytics.windows import period_window
from salesflow.services.reports import pdf
from salesflow.services.reports.xlsx import render_xlsx
from tests.builders import RETAIL, RETAIL_LAST_DAY, TODAY, load_retail_store, read_retail_lines


def clock_at(day: date) -> Callable[[], datetime]:
    return lambda: datetime.combine(day, time(20, 0), tzinfo=UTC)


def resources_for(settings: Settings, day: date) -> AbstractAsyncContextManager[Resources]:
    return open_resources(settings, clock=clock_at(day))


# --- the demo store against DuckDB SQL on the same file ---


@pytest.fixture
async def demo(
    store_file: Path, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[Resources, Path]]:
    async with resources_for(make_settings(), TODAY) as resources:
        yield resources, store_file


async def test_demo_quarter_matches_sql(demo: tuple[Resources, Path]) -> None:
    resources, _ = demo
    window = period_window(Period.QUARTERLY, today=TODAY)
    report = await resources.sales_analytics.report(SalesQuery(period=Period.QUARTERLY), window)
    lines = resources.store.sale_lines(  # type: ignore[union-attr]
        datetime.combine(window.first, time()), datetime.combine(window.last + timedelta(days=1), time())
    )
    assert report.kpis.total_revenue == pytest.approx(lines["subtotal"].sum(), abs=0.01)
    assert report.kpis.total_quantity == lines["quantity"].sum()
    assert report.kpis.total_transactions == lines["sale_id"].nunique()
    by_product = lines.groupby("product_id")["subtotal"].sum().sort_values(ascending=False)
    assert [p.product_id for p in report.kpis.top_products] == by_product.index[:5].tolist()
    daily = lines.groupby(lines["sold_at"].dt.date)["subtotal"].sum()
    assert len(report.daily) == 90
    for row in report.daily:
        assert row.total_revenue == pytest.approx(daily.get(row.date, 0.0), abs=0.01)
    assert sum(c.share_of_revenue for c in report.by_category or []) == pytest.approx(100, abs=0.05)


async def test_demo_stock_matches_sql(demo: tuple[Resources, Path]) -> None:
    resources, _ = demo
    today = TODAY
    states = await resources.stock_analytics.product_states(today)
    store: EmbeddedStore = resources.store  # type: ignore[assignment]
    products = store.products()
    lines = store.sale_lines(datetime(2000, 1, 1), datetime(2100, 1, 1))
    last_sale = lines.groupby("product_id")["sold_at"].max().dt.date
    stock = products.set_index("product_id")["stock_quantity"]
    threshold = products.set_index("product_id")["low_stock_threshold"]
    dead = {
        pid
        for pid in products["product_id"]
        if stock[pid] > 0
        and stock[pid] >= threshold[pid]
        and (pid not in last_sale or last_sale[pid] <= today - timedelta(days=90))
    }
    assert set(states.loc[states["status"] == "DEAD_STOCK", "product_id"]) == dead and dead
    assert set(states.loc[states["status"] == "OUT_OF_STOCK", "product_id"]) == set(stock[stock <= 0].index)
    window = lines[
        (lines["sold_at"].dt.date >= today - timedelta(days=28)) & (lines["sold_at"].dt.date < today)
    ]
    rate = window.groupby("product_id")["quantity"].sum().reindex(products["product_id"], fill_value=0) / 28
    np.testing.assert_allclose(states["daily_demand"], rate.to_numpy())
    selling = rate.to_numpy() > 0
    np.testing.assert_allclose(
        states["coverage_days"].to_numpy()[selling], (stock.clip(lower=0) / rate).to_numpy()[selling]
    )


# --- the UCI Online Retail lines (a real UK gift shop, 2010-12-01 .. 2011-12-09) ---


def retail_lines() -> pd.DataFrame:
    if not RETAIL.exists():
        pytest.skip(f"real data not found at {RETAIL} (set SHARED_DIR)")
    return read_retail_lines()


@pytest.fixture(scope="module")
def retail_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The real lines in the Java schema: StockCode → sku, InvoiceNo → sale, InvoiceDate → sale date."""
    raw = retail_lines()
    path = tmp_path_factory.mktemp("retail") / "salesflow.duckdb"
    return path, load_retail_store(path, raw)


@pytest.fixture
async def retail(
    retail_store: tuple[Path, pd.DataFrame], make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[Resources, pd.DataFrame]]:
    path, raw = retail_store
    settings = make_settings(analytics_max_window_days=400)
    settings.source.data_dir.mkdir(parents=True, exist_ok=True)
    settings.source.embedded_db_path.write_bytes(path.read_bytes())
    async with resources_for(settings, RETAIL_LAST_DAY) as resources:
        yield resources, raw


def test_real_data_is_the_published_data_set() -> None:
    raw = pd.read_parquet(RETAIL) if RETAIL.exists() else pytest.skip("no real data")
    assert (
        len(raw) == 541_909 and raw["InvoiceNo"].nunique() == 25_900 and raw["StockCode"].nunique() == 4_070
    )
    assert raw["Quantity"].sum() == 5_176_450
    assert (raw["Quantity"] * raw["UnitPrice"]).sum() == pytest.approx(9_747_747.934, abs=0.01)


async def test_real_totals_and_zero_filled_days(retail: tuple[Resources, pd.DataFrame]) -> None:
    resources, raw = retail
    query = SalesQuery(start_date=date(2010, 12, 1), end_date=RETAIL_LAST_DAY)
    from salesflow.services.analytics.windows import resolve_window

    window = resolve_window(query, today=RETAIL_LAST_DAY, max_days=400)
    report = await resources.sales_analytics.report(query, window)
    assert report.kpis.total_revenue == pytest.approx(raw["subtotal"].sum(), abs=0.05)
    assert report.kpis.total_quantity == raw["Quantity"].sum()
    assert report.kpis.total_transactions == raw["InvoiceNo"].nunique()
    assert len(report.daily) == 374  # every calendar day, the shop's closed days included
    trading = {d for d, r in ((row.date, row.total_revenue) for row in report.daily) if r > 0}
    assert len(trading) == 305 and trading == set(raw["InvoiceDate"].dt.date)
    assert all(row.total_transactions == 0 for row in report.daily if row.date.weekday() == 5)  # no Saturdays
    top = raw.groupby("product_id")["subtotal"].sum().sort_values(ascending=False)
    assert [p.product_id for p in report.kpis.top_products] == top.index[:5].tolist()
    assert report.kpis.top_products[0].revenue == pytest.approx(top.iloc[0], abs=0.01)
    assert report.by_category is None  # this shop's catalogue has no categories


async def test_real_dead_stock_and_coverage(retail: tuple[Resources, pd.DataFrame]) -> None:
    resources, raw = retail
    states = (await resources.stock_analytics.product_states(RETAIL_LAST_DAY)).set_index("product_id")
    last_sale = raw.groupby("product_id")["InvoiceDate"].max().dt.date
    dead = set(last_sale[last_sale <= RETAIL_LAST_DAY - timedelta(days=90)].index)
    assert set(states.index[states["status"] == "DEAD_STOCK"]) == dead and len(dead) > 500
    recent = raw[
        (raw["InvoiceDate"].dt.date >= RETAIL_LAST_DAY - timedelta(days=28))
        & (raw["InvoiceDate"].dt.date < RETAIL_LAST_DAY)
    ]
    rate = recent.groupby("product_id")["Quantity"].sum() / 28
    for product_id in rate.sort_values().index[-20:]:  # the fastest sellers: a few days of cover
        assert states.loc[product_id, "coverage_days"] == pytest.approx(25 / rate[product_id])
    assert states.loc[states["daily_demand"] == 0, "coverage_days"].isna().all()


async def test_the_real_shops_stock_report_prints_on_a_few_pages(
    retail: tuple[Resources, pd.DataFrame],
) -> None:
    """~3,700 products, ~1,800 to reorder: the PDF shows the most at stake and says how many more the Excel
    file has (≤ 15 pages; every row would be ~80)."""
    resources, _ = retail
    now = clock_at(RETAIL_LAST_DAY)()
    content = await resources.reports.gatherer.gather(
        ReportType.STOCK, SalesQuery(period=Period.WEEKLY), scope="admin", generated_at=now
    )
    assert content.stock is not None and len(content.stock.reorder_suggestions) > 1_000
    document = pdf.render_pdf(content)
    assert len(re.findall(rb"/Type\s*/Page\b", document)) <= 15
    workbook = load_workbook(io.BytesIO(render_xlsx(content)), read_only=True)
    assert workbook["Reorder"].max_row == len(content.stock.reorder_suggestions) + 1  # every row kept
