"""Forecast and anomaly routes over HTTP: contract keys, product resolution, errors, DEV = PROD."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import httpx
import pytest

from salesflow.config import Settings
from salesflow.integration.java_demo import StandinState
from salesflow.services.ml.forecasting import MODELS
from tests.builders import TODAY
from tests.servers import UvicornThread


@pytest.fixture
def prod_api(
    serve: Callable[..., httpx.Client], prod_settings: Settings, tokens: dict[str, str]
) -> httpx.Client:
    client = serve(prod_settings)
    client.headers["Authorization"] = f"Bearer {tokens['USER']}"
    return client


def test_global_forecast_has_the_contract_keys(dev_api: httpx.Client) -> None:
    body = dev_api.post(
        "/ml/forecast", json={"payload": {"scope": "GLOBAL", "forecast_days": 14}, "required_roles": []}
    ).json()
    assert {"scope", "product_id", "dates", "predictions", "summary", "product"} <= set(body)
    assert body["scope"] == "GLOBAL" and body["product"] is None and body["product_id"] is None
    assert len(body["dates"]) == len(body["predictions"]) == 14
    assert body["dates"][0] == TODAY.isoformat()
    assert all(p >= 0 for p in body["predictions"])
    for level in ("80", "95"):
        assert all(
            lo <= p + 1e-6 <= hi + 2e-6
            for lo, p, hi in zip(body["lower"][level], body["predictions"], body["upper"][level], strict=True)
        )
    summary = body["summary"]
    assert summary["total"] == pytest.approx(sum(body["predictions"]), abs=0.05)
    assert summary["peak_value"] == max(body["predictions"]) and summary["trend"] in (
        "upward",
        "downward",
        "stable",
    )
    assert summary["period_label"] == "Next 14 days"
    assert body["model"]["kind"] == "smooth" and body["model"]["reason"]
    # Chosen and backtested on the last 28 days, whatever the request (one forecast per series and day).
    assert body["backtest"]["horizon"] == 28 and body["backtest"]["bucket_days"] == 1
    assert body["backtest"]["model"]["mase"] is not None


def test_weekly_bucket_and_revenue_metric(dev_api: httpx.Client) -> None:
    body = dev_api.post(
        "/ml/forecast", json={"scope": "GLOBAL", "forecast_days": 30, "period": "weekly", "metric": "revenue"}
    ).json()
    assert body["bucket"] == "weekly" and body["metric"] == "revenue" and len(body["predictions"]) == 5
    assert body["summary"]["period_label"] == "Next 35 days, by week (5 × 7 days)"


def test_the_buckets_tell_one_story(dev_api: httpx.Client) -> None:
    """Weekly and 30-day forecasts are the daily forecast of the same days, summed: a manager who asks
    three ways gets one answer (the UCI shop once got 31k a day, 804k and 318k a week)."""
    daily = dev_api.post("/ml/forecast", json={"scope": "GLOBAL", "forecast_days": 90}).json()
    days = daily["predictions"]
    for period, size in (("weekly", 7), ("monthly", 30)):
        body = dev_api.post(
            "/ml/forecast", json={"scope": "GLOBAL", "forecast_days": 90, "period": period}
        ).json()
        assert len(body["predictions"]) * size >= 90 and body["dates"][0] == daily["dates"][0]
        for i, bucket in enumerate(body["predictions"][: 90 // size]):
            assert bucket == pytest.approx(sum(days[i * size : (i + 1) * size]), rel=1e-3, abs=0.05)
        for level in ("80", "95"):
            lows, highs = body["lower"][level], body["upper"][level]
            assert all(lo <= p <= hi for lo, p, hi in zip(lows, body["predictions"], highs, strict=True))
        assert body["summary"]["daily_average"] == pytest.approx(daily["summary"]["daily_average"], rel=0.1)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_the_api_accepts_forecasts(dev_api: httpx.Client, model: str) -> None:
    response = dev_api.post("/ml/forecast", json={"scope": "GLOBAL", "forecast_days": 7, "model": model})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 7 and all(p >= 0 for p in body["predictions"])
    assert body["backtest"] is not None and body["backtest"]["model"]["mae"] is not None


@pytest.mark.parametrize("field", ["sku", "name", "product_id"])
def test_product_forecast_by_sku_name_or_id(dev_api: httpx.Client, field: str) -> None:
    products = (
        dev_api.get("/analytics/stock").json()["critical_products"]
        + dev_api.get("/analytics/sales", params={"period": "quarterly"}).json()["kpis"]["top_products"]
    )
    top = dev_api.get("/analytics/sales", params={"period": "quarterly"}).json()["kpis"]["top_products"][0]
    value = {"sku": top["sku"], "name": top["name"], "product_id": top["product_id"]}[field]
    body = dev_api.post("/ml/forecast", json={"scope": "PRODUCT", field: value, "forecast_days": 7}).json()
    assert body["product"]["id"] == top["product_id"] and body["product_id"] == top["product_id"]
    assert body["product"]["sku"] == top["sku"] and len(body["predictions"]) == 7
    assert products


def test_an_id_and_a_sku_naming_different_products_is_a_422_naming_both(dev_api: httpx.Client) -> None:
    products = dev_api.get("/analytics/sales", params={"period": "quarterly"}).json()["kpis"]["top_products"]
    first, second = products[0], products[1]
    agreeing = {"scope": "PRODUCT", "sku": first["sku"], "product_id": first["product_id"]}
    assert dev_api.post("/ml/forecast", json=agreeing).json()["product"]["sku"] == first["sku"]
    conflicting = {**agreeing, "product_id": second["product_id"]}
    for path in ("/ml/forecast", "/ml/anomalies"):
        response = dev_api.post(path, json=conflicting)
        assert response.status_code == 422
        issue = response.json()["detail"][0]
        assert issue["loc"] == ["product_id"]
        assert f"SKU {first['sku']!r}" in issue["msg"] and f"id {second['product_id']}" in issue["msg"]


def test_unknown_product_is_404(dev_api: httpx.Client) -> None:
    response = dev_api.post("/ml/forecast", json={"scope": "PRODUCT", "sku": "NOPE-1"})
    assert response.status_code == 404 and response.json() == {"detail": "No product with SKU 'NOPE-1'"}


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "PRODUCT"},
        {"scope": "GLOBAL", "forecast_days": 0},
        {"scope": "GLOBAL", "forecast_days": 366},
        {"scope": "GLOBAL", "period": "hourly"},
        {"scope": "GLOBAL", "level": [120]},
    ],
)
def test_bad_forecast_requests_are_422(dev_api: httpx.Client, body: dict[str, object]) -> None:
    assert dev_api.post("/ml/forecast", json=body).status_code == 422


def test_unknown_model_is_422_naming_it(dev_api: httpx.Client) -> None:
    response = dev_api.post("/ml/forecast", json={"scope": "GLOBAL", "model": "prophet"})
    assert response.status_code == 422 and "unknown model 'prophet'" in response.json()["detail"][0]["msg"]


def test_a_requested_model_is_used(dev_api: httpx.Client) -> None:
    body = dev_api.post("/ml/forecast", json={"scope": "GLOBAL", "model": "linear_trend"}).json()
    assert body["model"]["name"] == "linear_trend" and body["model"]["kind"] == "requested"


def test_anomalies_have_the_contract_keys(dev_api: httpx.Client) -> None:
    body = dev_api.post("/ml/anomalies", json={"payload": {"scope": "GLOBAL", "period": "daily"}}).json()
    assert {"scope", "product_id", "period", "count", "anomalies", "product"} <= set(body)
    assert body["count"] == len(body["anomalies"])
    for anomaly in body["anomalies"]:
        assert anomaly["type"] in ("HIGH_SPIKE", "DROP", "ZERO_DROP") and anomaly["severity"] in (
            "high",
            "medium",
        )
        assert abs(anomaly["score"]) > 3 and "expected" in anomaly["explanation"]
    assert body["count"] >= 3  # the demo's injected shop-wide spike, drop and zero day


def test_anomalies_are_practically_significant(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], store_file: object
) -> None:
    """Every anomaly reported is at least ANOMALY_MIN_CHANGE and ANOMALY_MIN_UNITS from its expected value;
    raising the minimums reports fewer (the same rule as the alerts)."""
    found: dict[float, list[dict[str, float]]] = {}
    for min_change in (0.3, 0.9):
        api = serve(make_settings(dev_mode=True, java_jwt_secret=None, anomaly_min_change=min_change))
        for scope in ({"scope": "GLOBAL"}, {"scope": "PRODUCT", "product_id": 3}):
            body = api.post("/ml/anomalies", json=scope).json()
            found.setdefault(min_change, []).extend(body["anomalies"])
        for anomaly in found[min_change]:
            gap = abs(anomaly["value"] - anomaly["expected"])
            assert gap >= 5 and gap >= min_change * anomaly["expected"], anomaly
    assert 0 < len(found[0.9]) < len(found[0.3])


def test_dev_and_prod_forecast_the_same(dev_api: httpx.Client, prod_api: httpx.Client) -> None:
    for request in (
        {"scope": "GLOBAL", "forecast_days": 7},
        {"scope": "PRODUCT", "product_id": 3, "forecast_days": 7},
    ):
        assert (
            dev_api.post("/ml/forecast", json=request).json()
            == prod_api.post("/ml/forecast", json=request).json()
        )
    anomalies = {"scope": "GLOBAL"}
    assert (
        dev_api.post("/ml/anomalies", json=anomalies).json()
        == prod_api.post("/ml/anomalies", json=anomalies).json()
    )


def test_ml_requests_read_through_the_line_cache(
    prod_api: httpx.Client, standin: tuple[UvicornThread, StandinState]
) -> None:
    """Ten mixed uncached forecasts and anomaly checks cost one history read; with Java down they keep
    answering from the last known lines."""
    _, state = standin
    skus = [
        p["sku"]
        for p in prod_api.get("/analytics/sales", params={"period": "quarterly"}).json()["kpis"][
            "top_products"
        ]
    ]
    requests = [
        ("/ml/forecast", {"scope": "GLOBAL", "forecast_days": days, "period": period})
        for days, period in ((7, "daily"), (14, "daily"), (28, "weekly"), (60, "monthly"))
    ] + [
        (path, {"scope": "PRODUCT", "sku": sku, "forecast_days": 7})
        for sku in skus[:3]
        for path in ("/ml/forecast", "/ml/anomalies")
    ]
    for path, body in requests:
        assert prod_api.post(path, json=body).status_code == 200
    assert sum(1 for _, path in state.requests if path == "/api/v1/sales/history") == 1
    state.fail_next = [503] * 50  # Java down
    for path, body in requests[:3]:
        response = prod_api.post(path, json={**body, "forecast_days": body["forecast_days"] + 1})
        assert response.status_code == 200, response.text
    state.fail_next = []


def test_a_units_forecast_carries_its_money_at_a_stated_price(dev_api: httpx.Client) -> None:
    """Money is the units at one price: every bucket's revenue is its units × `unit_price` (to the cent), so a
    daily and a weekly view of the same days agree in money as in units."""
    for scope in ({"scope": "GLOBAL"}, {"scope": "PRODUCT", "product_id": 1}):
        daily = dev_api.post("/ml/forecast", json={**scope, "forecast_days": 14}).json()
        weekly = dev_api.post("/ml/forecast", json={**scope, "forecast_days": 14, "period": "weekly"}).json()
        price = daily["unit_price"]
        assert price is not None and price > 0 and weekly["unit_price"] == price
        for body in (daily, weekly):
            for units, money in zip(body["predictions"], body["revenue"], strict=True):
                assert money == pytest.approx(units * price, abs=0.01 + 1e-9)
        # Rounded so that running totals are the exact totals rounded: the views agree to the cent.
        assert sum(daily["revenue"]) == pytest.approx(sum(weekly["revenue"]), abs=0.005)
    money = dev_api.post("/ml/forecast", json={"scope": "GLOBAL", "metric": "revenue"}).json()
    assert money["revenue"] is None and money["unit_price"] is None  # already money


def test_every_product_of_the_demo_store_tells_one_story_whatever_the_bucket(
    make_settings: Callable[..., Settings], serve: Callable[..., httpx.Client], store_file: Path
) -> None:
    """The same days add up to the same units and money to the cent, and get the same trend label, by day,
    by week or by 30 days (81952V once summed to 2.80 by day and 2.88 by week; 85099B was "upward" by day
    and "downward" by 30 days)."""
    with duckdb.connect(str(store_file), read_only=True) as store:
        ids = [row[0] for row in store.execute("SELECT id FROM products ORDER BY id").fetchall()]
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None))
    differing: list[tuple[object, ...]] = []
    for product_id in ids:
        views = {
            (days, period): api.post(
                "/ml/forecast",
                json={"scope": "PRODUCT", "product_id": product_id, "forecast_days": days, "period": period},
            ).json()
            for days, period in (
                (28, "daily"),
                (28, "weekly"),
                (30, "daily"),
                (30, "monthly"),
                (30, "weekly"),
            )
        }
        for days, other in ((28, "weekly"), (30, "monthly")):
            by_day, by_bucket = views[days, "daily"], views[days, other]
            for key in ("predictions", "revenue"):
                if abs(sum(by_day[key]) - sum(by_bucket[key])) >= 0.005:
                    differing.append((product_id, other, key, sum(by_day[key]), sum(by_bucket[key])))
        trends = {view["summary"]["trend"] for (days, _), view in views.items() if days == 30}
        if (
            len(trends) > 1
            or views[28, "daily"]["summary"]["trend"] != views[28, "weekly"]["summary"]["trend"]
        ):
            differing.append((product_id, "trend", sorted(trends)))
    assert len(ids) >= 40 and differing == []
