"""The Java adapter against the stand-in: decoding, the service account, every quirk, and failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest
from pydantic import SecretStr

from salesflow.data.sources.base import PRODUCT_COLUMNS, SALE_LINE_COLUMNS, SaleInput, SaleItemInput
from salesflow.data.sources.java import JavaDataSource
from salesflow.data.sources.java_client import JavaClient, ServiceAccount
from salesflow.errors import NotFound, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from salesflow.integration.java_demo import StandinState
from salesflow.models.auth import User
from tests.builders import TODAY, pinned_clock
from tests.servers import UvicornThread


@pytest.fixture
async def http(standin: tuple[UvicornThread, StandinState]) -> AsyncIterator[httpx.AsyncClient]:
    server, _ = standin
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=5, trust_env=False) as client:
        yield client


@pytest.fixture
def java(http: httpx.AsyncClient) -> JavaClient:
    return JavaClient(http=http, service_phone="0000000000", service_password=SecretStr("password"))


@pytest.fixture
def source(java: JavaClient, standin: tuple[UvicornThread, StandinState]) -> JavaDataSource:
    server, _ = standin
    return JavaDataSource(java, timezone=ZoneInfo("UTC"), root_url=server.url, clock=pinned_clock)


def user_of(state: StandinState, phone: str) -> User:
    java_user = state.users[phone]
    return User(
        subject=phone,
        username=java_user.username,
        roles=frozenset({java_user.role}),
        token=SecretStr(state.issue_access_token(java_user)),
    )


async def test_products_match_the_store_with_categories_and_default_thresholds(
    source: JavaDataSource, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    state.store.cursor().execute("UPDATE products SET low_stock_threshold = NULL WHERE id = 1")
    products = await source.products()
    expected = state.store.products()
    assert dict(products.dtypes.astype(str)) == PRODUCT_COLUMNS | {
        "sku": "string",
        "name": "string",
        "category": "string",
    }
    pd.testing.assert_frame_equal(products, expected)
    assert products.loc[products["product_id"] == 1, "low_stock_threshold"].item() == 10
    assert products["category"].notna().all()


async def test_sale_lines_in_a_window_equal_the_embedded_store(
    source: JavaDataSource, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    end = datetime.combine(TODAY, datetime.min.time())
    start = end - timedelta(days=30)
    lines = await source.sale_lines(start, end)
    expected = state.store.sale_lines(start, end)
    assert len(lines) > 1000
    assert dict(lines.dtypes.astype(str)) == {k: v for k, v in SALE_LINE_COLUMNS.items()}
    order = ["sale_id", "product_id", "quantity", "unit_price"]
    pd.testing.assert_frame_equal(
        lines.sort_values(order).reset_index(drop=True), expected.sort_values(order).reset_index(drop=True)
    )


async def test_sparse_by_sku_history_is_zero_filled(
    java: JavaClient, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    lines = state.store.sale_lines(datetime(2000, 1, 1), state.sold_by_now())
    sku = lines["sku"].value_counts().index[-1]  # the rarest seller: most days have no sale
    today = TODAY
    daily = await java.daily_quantity_by_sku(sku, days=60, today=today)
    assert len(daily) == 61 and daily.index[-1].date() == today
    recent = lines[(lines["sku"] == sku) & (lines["sold_at"] >= pd.Timestamp(today - timedelta(days=60)))]
    assert daily.sum() == recent["quantity"].sum()
    assert (daily == 0).sum() > 0


async def test_service_account_logs_in_once_under_concurrency(
    java: JavaClient, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    await asyncio.gather(*(java.sale_history(1) for _ in range(20)))
    assert state.login_count == 1 and java.account.login_count == 1


async def test_bare_403_on_a_revoked_token_triggers_one_new_login(
    java: JavaClient, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    await java.sale_history(1)
    state.tokens_not_before = 10**10  # every token issued so far (and any new one) is refused
    with pytest.raises(UpstreamRejected, match=r"refused the service account on /sales/history \(HTTP 403\)"):
        await java.sale_history(1)
    assert state.login_count == 2  # exactly one retry with a fresh login, then a clear error
    state.tokens_not_before = 0
    await java.sale_history(1)
    assert state.login_count == 2


async def test_service_account_renews_before_expiry(http: httpx.AsyncClient, standin) -> None:
    _, state = standin
    now = [1_000.0]
    client = JavaClient(http=http, service_phone="0000000000", service_password=SecretStr("password"))
    client.account.clock = lambda: now[0]
    state.access_lifetime_seconds = 600
    first = await client.account.token()
    now[0] = 1e12  # far past the token's exp - margin
    second = await client.account.token()
    assert state.login_count == 2 and client.account.login_count == 2
    assert first != second or state.login_count == 2


async def test_renewal_happens_a_margin_before_exp() -> None:
    import jwt

    logins: list[int] = []

    async def login() -> str:
        logins.append(1)
        return jwt.encode({"exp": 10_000, "iat": 9_000}, "k" * 32, algorithm="HS256")

    now = [9_000.0]
    account = ServiceAccount(login=login, renew_margin_seconds=120, clock=lambda: now[0])
    await account.token()
    now[0] = 9_879.0
    await account.token()
    assert len(logins) == 1
    now[0] = 9_881.0  # within 120 s of exp
    await account.token()
    assert len(logins) == 2


async def test_wrong_service_password_is_named(http: httpx.AsyncClient) -> None:
    client = JavaClient(http=http, service_phone="0000000000", service_password=SecretStr("wrong"))
    with pytest.raises(UpstreamRejected, match="Java refused the login"):
        await client.sale_history(1)


async def test_static_system_token_is_used_without_login(
    http: httpx.AsyncClient, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    token = state.issue_access_token(state.users["0000000000"])
    client = JavaClient(http=http, system_token=SecretStr(token))
    assert len(await client.products()) == 40
    assert state.login_count == 0


async def test_bulk_sales_text_reply_is_success_and_stock_is_decremented(
    source: JavaDataSource, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    before = state.store.products().set_index("sku")["stock_quantity"]
    sku = str(before[before >= 3].index[0])
    catalog = state.store.products()
    product_id = int(catalog.loc[catalog["sku"] == sku, "product_id"].item())
    sales = [
        SaleInput(items=(SaleItemInput(quantity=2, sku=sku),)),
        SaleInput(items=(SaleItemInput(quantity=1, product_id=product_id),)),
    ]
    result = await source.record_sales(sales, user=user_of(state, "0000000000"))
    assert (result.sales_written, result.lines_written) == (2, 2)
    after = state.store.products().set_index("sku")["stock_quantity"]
    assert after[sku] == before[sku] - 3


async def test_insufficient_stock_rolls_back_the_whole_batch(
    source: JavaDataSource, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    products = state.store.products().set_index("sku")
    plenty, scarce = products.index[0], products.index[1]
    lines_before = len(state.store.sale_lines(datetime(2000, 1, 1), datetime(9999, 1, 1)))
    sales = [
        SaleInput(items=(SaleItemInput(quantity=1, sku=plenty),)),
        SaleInput(
            items=(SaleItemInput(quantity=int(products.loc[scarce, "stock_quantity"]) + 1, sku=scarce),)
        ),
    ]
    with pytest.raises(
        UpstreamRejected, match=f"INSUFFICIENT_STOCK Not enough stock for product {scarce}"
    ) as caught:
        await source.record_sales(sales, user=user_of(state, "0000000000"))
    assert caught.value.code == "INSUFFICIENT_STOCK"
    assert len(state.store.sale_lines(datetime(2000, 1, 1), datetime(9999, 1, 1))) == lines_before
    assert state.store.products().set_index("sku")["stock_quantity"].equals(products["stock_quantity"])


async def test_writes_use_the_callers_own_token(
    source: JavaDataSource, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    sku = state.store.products()["sku"].iloc[0]
    with pytest.raises(UpstreamRejected, match="refused the caller's token") as caught:
        await source.record_sales(
            [SaleInput(items=(SaleItemInput(quantity=1, sku=sku),))], user=user_of(state, "0600000001")
        )
    assert caught.value.status == 403
    assert state.login_count == 0  # the service account was not used instead


async def test_unknown_product_is_not_found(java: JavaClient, standin) -> None:
    _, state = standin
    token = state.issue_access_token(state.users["0000000000"])
    with pytest.raises(NotFound, match="Product not found"):
        await java.bulk_sales([SaleInput(items=(SaleItemInput(quantity=1, sku="NOPE"),))], token=token)


async def test_reads_are_retried_on_503_but_writes_are_not(
    java: JavaClient, standin: tuple[UvicornThread, StandinState]
) -> None:
    _, state = standin
    state.fail_next = [503, 502]  # the login absorbs both (retried: it changes nothing on Java's side)
    assert len(await java.products()) == 40
    state.fail_next = [503, 502]
    assert len(await java.products()) == 40  # /products and /inventory each absorbed a failure
    state.requests.clear()
    state.fail_next = [503]
    token = state.issue_access_token(state.users["0000000000"])
    with pytest.raises(UpstreamUnavailable, match=r"HTTP 503 on POST /api/v1/sales/bulk"):
        await java.bulk_sales([SaleInput(items=(SaleItemInput(quantity=1, sku="X"),))], token=token)
    assert state.requests == [("POST", "/api/v1/sales/bulk")]


async def test_persistent_5xx_becomes_unavailable_after_bounded_retries(java: JavaClient, standin) -> None:
    _, state = standin
    await java.account.token()
    state.requests.clear()
    state.fail_next = [503] * 10
    with pytest.raises(
        UpstreamUnavailable, match=r"Java is unavailable \(HTTP 503 on GET /api/v1/sales/history\)"
    ):
        await java.sale_history(1)
    assert len(state.requests) == 3  # one try + JAVA_READ_RETRIES (2)


async def test_slow_java_becomes_a_timeout(standin: tuple[UvicornThread, StandinState]) -> None:
    server, state = standin
    state.delay_seconds = 1.0
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=0.2, trust_env=False) as http:
        client = JavaClient(http=http, system_token=SecretStr("t"), read_retries=0)
        with pytest.raises(UpstreamTimeout, match="Java did not answer GET /api/v1/products in time"):
            await client.products()


async def test_java_outage_is_unavailable(
    java: JavaClient, standin: tuple[UvicornThread, StandinState]
) -> None:
    server, _ = standin
    server.stop()
    with pytest.raises(UpstreamUnavailable, match="Java is unreachable"):
        await java.products()
