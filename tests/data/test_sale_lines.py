"""The columnar line cache over the Java stand-in: cold load, incremental refresh, sharing, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import orjson
import pandas as pd
import pytest
from pydantic import SecretStr

from salesflow.config import Settings
from salesflow.data.cache import Cache, MemoryBackend, RedisBackend
from salesflow.data.sale_lines import SNAPSHOT_KEY, SaleLineCache, business_days
from salesflow.data.sources.base import SaleInput, SaleItemInput
from salesflow.data.sources.java import JavaDataSource
from salesflow.data.sources.java_client import JavaClient
from salesflow.errors import UpstreamUnavailable
from salesflow.integration.java_demo import StandinState
from salesflow.models.analytics import Period, SalesQuery
from salesflow.models.auth import User
from salesflow.resources import open_resources
from tests.builders import TODAY, pinned_clock
from tests.servers import UvicornThread

UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
async def java_source(standin: tuple[UvicornThread, StandinState]) -> AsyncIterator[JavaDataSource]:
    server, _ = standin
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=10, trust_env=False) as http:
        client = JavaClient(http=http, service_phone="0000000000", service_password=SecretStr("password"))
        yield JavaDataSource(client, timezone=UTC_ZONE, root_url=server.url, clock=pinned_clock)


def make_lines(source: JavaDataSource, cache: Cache | None = None, **options: object) -> SaleLineCache:
    return SaleLineCache(
        source,
        cache or Cache(redis=None, memory=MemoryBackend()),
        java_tz=UTC_ZONE,
        business_tz=UTC_ZONE,
        clock=pinned_clock,
        **options,  # type: ignore[arg-type]
    )


def history_calls(state: StandinState) -> list[str]:
    return [path for method, path in state.requests if path == "/api/v1/sales/history"]


async def test_cold_load_serves_a_burst_with_one_fetch(java_source: JavaDataSource, standin) -> None:
    _, state = standin
    lines = make_lines(java_source)
    today = TODAY
    week, year, products = await asyncio.gather(
        lines.window(today - timedelta(days=6), today),
        lines.window(today - timedelta(days=365), today),
        lines.products(),
    )
    assert len(history_calls(state)) == 1 and lines.fetches == 1
    assert len(week) > 0 and len(year) > len(week) and len(products) == 40
    expected = state.store.sale_lines(
        datetime.combine(today - timedelta(days=6), datetime.min.time()), state.sold_by_now()
    )  # Java has made none of the day's later sales yet
    assert len(week) == len(expected)


async def test_new_sales_arrive_by_incremental_refresh(java_source: JavaDataSource, standin) -> None:
    _, state = standin
    lines = make_lines(java_source, refresh_seconds=0)
    today = TODAY
    before = await lines.window(today, today)
    skus = state.store.products().query("stock_quantity > 100")["sku"].tolist()
    state.store.record_sales(
        [SaleInput(items=(SaleItemInput(quantity=1, sku=skus[i % len(skus)]),)) for i in range(1000)],
        semantics="java",
        now=state.now(),
    )
    state.writes += 1
    state.requests.clear()
    after = await lines.window(today, today)
    assert len(after) == len(before) + 1000
    assert after["sale_id"].nunique() == before["sale_id"].nunique() + 1000
    assert len(history_calls(state)) == 1 and lines.fetches == 2  # one small incremental read, no reload


async def test_incremental_read_asks_for_recent_days_only(java_source: JavaDataSource, monkeypatch) -> None:
    asked: list[int] = []
    original = java_source.client.sale_history

    async def spy(days: int) -> pd.DataFrame:
        asked.append(days)
        return await original(days)

    monkeypatch.setattr(java_source.client, "sale_history", spy)
    lines = make_lines(java_source, refresh_seconds=0, history_days=400)
    today = TODAY
    await lines.window(today - timedelta(days=89), today)
    await lines.window(today - timedelta(days=89), today)
    assert asked == [401, 1]  # the history kept (and a day for time-zone offsets), then the tail


async def test_refresh_is_throttled(java_source: JavaDataSource, standin) -> None:
    lines = make_lines(java_source, refresh_seconds=3600)
    today = TODAY
    for _ in range(5):
        await lines.window(today, today)
    assert lines.fetches == 1


async def test_a_second_process_starts_from_the_shared_snapshot(
    java_source: JavaDataSource, redis_url: str
) -> None:
    first_cache = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend())
    first = make_lines(java_source, first_cache)
    today = TODAY
    expected = await first.window(today - timedelta(days=30), today)
    async with asyncio.timeout(10):
        # Written by a background task with nothing to await from here: poll with a deadline.
        while await first_cache.get_raw(SNAPSHOT_KEY) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    second_cache = Cache(redis=RedisBackend.from_url(redis_url), memory=MemoryBackend())
    second = make_lines(java_source, second_cache)
    asked: list[int] = []
    original = java_source.client.sale_history

    async def spy(days: int) -> pd.DataFrame:
        asked.append(days)
        return await original(days)

    java_source.client.sale_history = spy  # type: ignore[method-assign]
    got = await second.window(today - timedelta(days=30), today)
    assert asked == [1]  # only the tail since the snapshot, not the whole history
    pd.testing.assert_frame_equal(got, expected)
    for cache in (first_cache, second_cache):
        await cache.aclose()


async def test_java_outage_serves_the_last_lines_but_a_cold_start_fails(
    java_source: JavaDataSource, standin
) -> None:
    server, _ = standin
    warm = make_lines(java_source, refresh_seconds=0)
    cold = make_lines(java_source)
    today = TODAY
    expected = await warm.window(today - timedelta(days=6), today)
    server.stop()
    pd.testing.assert_frame_equal(await warm.window(today - timedelta(days=6), today), expected)
    with pytest.raises(UpstreamUnavailable):
        await cold.window(today, today)


async def test_the_full_history_window_is_served_from_the_cold_load(
    java_source: JavaDataSource, standin
) -> None:
    """The ML pipelines ask for `history_days` whole days ending yesterday: the cold load covers them."""
    _, state = standin
    lines = make_lines(java_source, history_days=400)
    await lines.window(TODAY - timedelta(days=6), TODAY)
    for _ in range(3):
        await lines.window(TODAY - timedelta(days=399), TODAY - timedelta(days=1))
    assert len(history_calls(state)) == 1 and lines.fetches == 1


async def test_older_windows_extend_the_cache_once(java_source: JavaDataSource, standin) -> None:
    _, state = standin
    lines = make_lines(java_source, history_days=60, max_history_days=400)
    await lines.window(TODAY - timedelta(days=6), TODAY)
    expected = state.store.sale_lines(
        datetime.combine(TODAY - timedelta(days=100), datetime.min.time()),
        datetime.combine(TODAY - timedelta(days=89), datetime.min.time()),
    )
    old = await lines.window(TODAY - timedelta(days=100), TODAY - timedelta(days=90))
    older = await lines.window(TODAY - timedelta(days=110), TODAY - timedelta(days=105))
    again = await lines.window(TODAY - timedelta(days=104), TODAY - timedelta(days=95))
    assert len(old) == len(expected) > 0 and len(older) > 0 and len(again) > 0
    assert len(history_calls(state)) == 3  # cold, then one per extension; the third window was covered
    with_outage = make_lines(java_source, history_days=60)
    await with_outage.window(TODAY, TODAY)
    state.fail_next = [503] * 10
    with pytest.raises(UpstreamUnavailable):  # the old lines are not known: no partial answer
        await with_outage.window(TODAY - timedelta(days=100), TODAY - timedelta(days=90))
    state.fail_next = []


def test_business_days_follow_the_business_time_zone() -> None:
    sold_at = pd.Series(pd.to_datetime(["2026-03-17 10:59", "2026-03-17 11:00", "2026-10-25 02:30"]))
    auckland = business_days(sold_at, ZoneInfo("UTC"), ZoneInfo("Pacific/Auckland"))  # UTC+13 in March
    assert [d.date().isoformat() for d in auckland] == ["2026-03-17", "2026-03-18", "2026-10-25"]
    paris_to_utc = business_days(sold_at, ZoneInfo("Europe/Paris"), ZoneInfo("UTC"))
    # 02:30 on 2026-10-25 happens twice in Paris (clocks go back): read as standard time, 01:30 UTC.
    assert [d.date().isoformat() for d in paris_to_utc] == ["2026-03-17", "2026-03-17", "2026-10-25"]
    same = business_days(sold_at, ZoneInfo("UTC"), ZoneInfo("UTC"))
    assert str(same.dtype) == "datetime64[s]" and same.iloc[0] == pd.Timestamp("2026-03-17")


async def test_recorded_sales_show_up_at_once(make_settings: Callable[..., Settings], store_file) -> None:
    async with open_resources(make_settings(), clock=pinned_clock) as resources:
        service = resources.sales_analytics
        before = await service.report_json(SalesQuery(period=Period.DAILY), scope="admin")
        sku = (await resources.lines.products())["sku"].iloc[0]
        now = pinned_clock().replace(tzinfo=None)
        sale = SaleInput(items=(SaleItemInput(quantity=7, sku=sku, unit_price=100.0),), sold_at=now)
        await resources.sales_recorder.record(
            [sale], user=User(subject="t", username="t", roles=frozenset({"ADMIN"}))
        )
        after = await service.report_json(SalesQuery(period=Period.DAILY), scope="admin")
        old, new = orjson.loads(before)["kpis"], orjson.loads(after)["kpis"]
        assert new["total_revenue"] == pytest.approx(old["total_revenue"] + 700.0)
        assert new["total_transactions"] == old["total_transactions"] + 1


async def test_products_changed_in_java_arrive_with_the_next_due_refresh(
    java_source: JavaDataSource, standin
) -> None:
    _, state = standin
    lines = make_lines(java_source, refresh_seconds=0)
    before = await lines.products()
    sku = before.sort_values("stock_quantity")["sku"].iloc[-1]
    sold = state.store.record_sales(
        [SaleInput(items=(SaleItemInput(quantity=3, sku=sku),))], semantics="java", now=state.now()
    )
    assert sold.lines_written == 1
    after = await lines.products()  # Java answers within the wait: the fresh products
    stock = dict(zip(after["sku"], after["stock_quantity"], strict=True))
    assert stock[sku] == int(before.loc[before["sku"] == sku, "stock_quantity"].iloc[0]) - 3
    assert lines.stale_since is None
