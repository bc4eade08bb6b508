"""DEV mode serves a Java-compatible demo API from its own demo store: the frontend's calls, in its order,
over HTTP with CORS preflights from its origin, work against the service alone, and product ids agree."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from salesflow.config import DEFAULT_CORS_ORIGINS, Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo_server import java_demo
from tests.builders import pinned_clock
from tests.servers import free_port

ORIGIN = DEFAULT_CORS_ORIGINS[1]  # the frontend's dev server


def preflight(url: str, method: str) -> None:
    response = httpx.options(
        url,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        trust_env=False,
    )
    assert response.status_code == 200, (url, response.text)
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_the_frontend_logs_in_lists_products_and_forecasts_one_against_dev_mode_alone(
    make_settings: Callable[..., Settings], serve: Callable[[Settings], httpx.Client], store_file
) -> None:
    port = free_port()
    api = serve(make_settings(dev_mode=True, dev_java_port=port))
    java = f"http://127.0.0.1:{port}/api/v1"
    cors = {"Origin": ORIGIN}

    preflight(f"{java}/auth/login", "POST")
    login = httpx.post(
        f"{java}/auth/login",
        json={"phoneNumber": "0600000001", "password": "secret-user"},
        headers=cors,
        trust_env=False,
    )
    assert login.status_code == 200, login.text
    token = login.json()["accessToken"]
    auth = {**cors, "Authorization": f"Bearer {token}"}
    me = httpx.get(f"{java}/auth/me", headers=auth, trust_env=False)
    assert me.status_code == 200 and me.json()["role"] == "USER"
    assert (
        httpx.post(
            f"{java}/auth/login", json={"phoneNumber": "0600000001", "password": "wrong"}, trust_env=False
        ).status_code
        == 400
    )  # Java's failed login

    preflight(f"{java}/products", "GET")
    products = httpx.get(f"{java}/products", headers=auth, trust_env=False).json()
    assert len(products) == 40
    chosen = products[3]

    preflight(str(api.base_url.copy_with(path="/api/v1/analytics/sales")), "GET")
    sales = api.get("/analytics/sales", params={"period": "monthly"}, headers=auth)
    assert sales.status_code == 200 and sales.headers["access-control-allow-origin"] == ORIGIN

    preflight(str(api.base_url.copy_with(path="/api/v1/ml/forecast")), "POST")
    body = {"scope": "PRODUCT", "product_id": chosen["id"], "forecast_days": 7}
    forecast = api.post("/ml/forecast", json={"payload": body, "required_roles": []}, headers=auth)
    assert forecast.status_code == 200, forecast.text
    # The same product on both sides: the demo Java API and the analytics read one store.
    assert forecast.json()["product"]["name"] == chosen["name"]
    assert forecast.json()["product"]["sku"] == chosen["sku"]


def test_the_demo_java_api_is_never_served_outside_dev_mode(
    prod_settings: Settings, serve: Callable[[Settings], httpx.Client]
) -> None:
    port = free_port()
    serve(prod_settings.replaced(dev_java_port=port))
    try:
        httpx.get(f"http://127.0.0.1:{port}/api/v1/products", timeout=1, trust_env=False)
    except httpx.ConnectError:
        return
    raise AssertionError("a demo Java API answered in PROD mode")


# The shapes of java-system-of-record.md, exactly: field names, nothing more, nothing less.
PRODUCT_DTO = {"id", "name", "sku", "price", "stockQuantity", "description", "imageUrl", "lowStockThreshold"}
SALE_RESPONSE = {"id", "saleDate", "totalAmount", "items"}
SALE_ITEM = {"productId", "productName", "sku", "quantity", "unitPrice", "subtotal"}
INVENTORY = {
    "id",
    "sku",
    "name",
    "description",
    "quantity",
    "price",
    "cost",
    "category",
    "createdAt",
    "updatedAt",
}
LOGIN = {"accessToken", "refreshToken", "refreshExpiresAt", "tokenType", "message", "user"}
LOGIN_USER = {"id", "phoneNumber", "username", "email", "role", "createdAt", "updatedAt"}
API_ERROR = {"status", "code", "message", "timestamp", "details"}
ACCOUNTS = {"ADMIN": ("0000000000", "password"), "USER": ("0600000001", "secret-user")}


def local_date_time(text: str) -> datetime:
    """Java's `LocalDateTime`: ISO-8601 without an offset."""
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is None, text
    return parsed


def sales_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    sales: list[dict[str, Any]] = response.json()
    for sale in sales:
        assert set(sale) == SALE_RESPONSE
        local_date_time(sale["saleDate"])
        for item in sale["items"]:
            assert set(item) == SALE_ITEM
            assert item["subtotal"] == pytest.approx(item["unitPrice"] * item["quantity"])
        assert sale["totalAmount"] == pytest.approx(sum(item["subtotal"] for item in sale["items"]), abs=0.01)
    return sales


def assert_access_denied(response: httpx.Response) -> None:
    """Java's answer to an authenticated user without the role: a 403 with an ApiError body."""
    assert response.status_code == 403, response.text
    assert set(response.json()) == API_ERROR and response.json()["code"] == "ACCESS_DENIED"


@pytest.mark.parametrize("role", ["ADMIN", "USER"])
def test_every_java_call_of_the_frontend_answers_with_the_contracts_shape_and_role_rules_in_dev_mode(
    role: str, make_settings: Callable[..., Settings], serve: Callable[[Settings], httpx.Client]
) -> None:
    """The pages' calls in their order: log in, who am I, products, the low-stock badge, inventory, the Sales
    page (history and recent), log out."""
    port = free_port()
    api = serve(make_settings(dev_mode=True, dev_java_port=port))
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Origin": ORIGIN}, trust_env=False
    ) as java:
        phone, password = ACCOUNTS[role]

        login = java.post("/auth/login", json={"phoneNumber": phone, "password": password})
        assert (
            login.status_code == 200
            and set(login.json()) == LOGIN
            and set(login.json()["user"]) == LOGIN_USER
        )
        assert login.json()["user"]["role"] == role and login.json()["tokenType"] == "Bearer"
        java.headers["Authorization"] = f"Bearer {login.json()['accessToken']}"
        me = java.get("/auth/me")
        assert me.json() == {"username": login.json()["user"]["username"], "role": role, "phoneNumber": phone}

        products = java.get("/products").json()
        assert products and all(set(product) == PRODUCT_DTO for product in products)
        low_stock = java.get("/products/low-stock")
        inventory = java.get("/inventory").json()
        assert len(inventory) == len(products) and all(set(row) == INVENTORY for row in inventory)
        history = java.get("/sales/history", params={"days": 7})
        recent = java.get("/sales/recent", params={"limit": 20})
        today = java.get("/sales/today")
        everything = java.get("/sales")

        if role == "USER":  # every /sales/** route and the low-stock list are ADMIN-only in Java
            for denied in (low_stock, history, recent, today, everything):
                assert_access_denied(denied)
        else:
            expected = [
                p["id"]
                for p in products
                if p["lowStockThreshold"] is not None and p["stockQuantity"] < p["lowStockThreshold"]
            ]
            assert expected and [p["id"] for p in low_stock.json()] == expected  # strict `<`; a null never
            assert all(set(product) == PRODUCT_DTO for product in low_stock.json())
            week = sales_of(history)
            assert [s["saleDate"] for s in week] == sorted((s["saleDate"] for s in week), reverse=True)
            assert sales_of(recent) == week[:20]  # the newest twenty, newest first
            now = pinned_clock().replace(tzinfo=None)  # the demo store's zone is UTC
            days = {local_date_time(s["saleDate"]).date() for s in sales_of(today)}
            assert days == {now.date()}
            assert len(sales_of(everything)) > len(week)
            # The demo day is made as the clock goes: nothing is sold after "now".
            assert max(local_date_time(s["saleDate"]) for s in sales_of(everything)) <= now
            # ...and the service's "today" is the same sales.
            figures = api.get("/analytics/sales", params={"period": "daily"}).json()["kpis"]
            assert figures["total_transactions"] == len(sales_of(today))
            assert figures["total_revenue"] == pytest.approx(sum(s["totalAmount"] for s in sales_of(today)))
            assert java.get("/sales/recent", params={"limit": 0}).status_code == 400
            assert java.get("/sales/history", params={"days": 10**9}).status_code == 400

        logout = java.post("/auth/logout", json={"refreshToken": login.json()["refreshToken"]})
        assert logout.status_code == 200 and logout.content == b""


async def test_the_demo_java_api_listens_as_soon_as_it_is_up_and_a_taken_port_only_warns(
    make_settings: Callable[..., Settings], store_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = make_settings(dev_mode=True, dev_java_port=port)
    store = EmbeddedStore(store_file)
    async with (
        java_demo(store, settings, pinned_clock),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1", trust_env=False) as java,
    ):
        # No wait of any kind: the first call of the frontend is answered.
        login = await java.post("/auth/login", json={"phoneNumber": "0000000000", "password": "password"})
        assert login.status_code == 200 and login.json()["accessToken"]
        with caplog.at_level(logging.WARNING):
            async with java_demo(store, settings, pinned_clock):  # the same port again: taken
                pass
        assert f"could not start on port {port}" in caplog.text
        assert (await java.post("/auth/logout")).status_code == 200  # the first one serves on
