"""DEV mode serves a Java-compatible demo API from its own demo store: the frontend's calls, in its order,
over HTTP with CORS preflights from its origin, work against the service alone, and product ids agree."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from salesflow.config import DEFAULT_CORS_ORIGINS, Settings
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
