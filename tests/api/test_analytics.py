"""Analytics over HTTP on the hand-checked shop, in DEV (embedded) and PROD (Java stand-in): every number."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from salesflow.api.main import create_app
from salesflow.config import Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import StandinState, create_standin
from tests.builders import build_hand_store, hand_clock
from tests.servers import RedisProcess, UvicornThread


@pytest.fixture(scope="module")
def hand_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hand_store(tmp_path_factory.mktemp("hand") / "hand.duckdb")


@pytest.fixture
def dev_api(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], hand_store: Path
) -> httpx.Client:
    settings = make_settings(dev_mode=True, java_jwt_secret=None)
    settings.source.data_dir.mkdir(parents=True, exist_ok=True)
    settings.source.embedded_db_path.write_bytes(hand_store.read_bytes())
    return serve(create_app(settings, clock=hand_clock))


@pytest.fixture
def hand_standin(tmp_path: Path, hand_store: Path) -> Iterator[tuple[UvicornThread, StandinState]]:
    path = tmp_path / "java" / "hand.duckdb"
    path.parent.mkdir(parents=True)
    path.write_bytes(hand_store.read_bytes())
    state = StandinState(store=EmbeddedStore(path), clock=hand_clock)
    server = UvicornThread(create_standin(state)).start()
    yield server, state
    server.stop()
    state.store.close()


@pytest.fixture
def prod_api(
    serve: Callable[..., httpx.Client],
    make_settings: Callable[..., Settings],
    hand_standin: tuple[UvicornThread, StandinState],
    redis_url: str,
) -> httpx.Client:
    server, state = hand_standin
    settings = make_settings(
        data_source="java",
        java_api_url=f"{server.url}/api/v1",
        java_service_phone="0000000000",
        java_service_password="password",
        redis_url=redis_url,
    )
    client = serve(create_app(settings, clock=hand_clock))
    client.headers["Authorization"] = (
        f"Bearer {state.issue_access_token(state.users['0600000001'])}"  # a USER
    )
    return client


@pytest.fixture(params=["dev", "prod"])
def api(request: pytest.FixtureRequest) -> httpx.Client:
    return request.getfixturevalue(f"{request.param}_api")  # type: ignore[no-any-return]


def test_weekly_sales_every_number(api: httpx.Client) -> None:
    body = api.get("/analytics/sales", params={"period": "weekly"}).json()
    assert (body["period"], body["start_date"], body["end_date"], body["period_label"]) == (
        "weekly",
        "2026-03-12",
        "2026-03-18",
        "Last 7 days",
    )
    kpis = body["kpis"]
    assert (
        kpis["total_revenue"],
        kpis["total_quantity"],
        kpis["total_transactions"],
        kpis["average_ticket"],
    ) == (50.0, 19, 5, 10.0)
    assert kpis["top_products"] == [
        {
            "product_id": 4,
            "sku": "D-1",
            "name": "Dish Soap",
            "total_quantity": 4,
            "revenue": 16.0,
            "share_of_revenue": 32.0,
        },
        {
            "product_id": 1,
            "sku": "A-1",
            "name": "Apple Juice",
            "total_quantity": 8,
            "revenue": 15.0,
            "share_of_revenue": 30.0,
        },
        {
            "product_id": 6,
            "sku": "F-1",
            "name": "Flour",
            "total_quantity": 4,
            "revenue": 10.0,
            "share_of_revenue": 20.0,
        },
        {
            "product_id": 2,
            "sku": "B-1",
            "name": "Bread",
            "total_quantity": 3,
            "revenue": 9.0,
            "share_of_revenue": 18.0,
        },
    ]
    assert kpis["seasonal_hint"] == "Revenue is up (+257%) on the previous 7 days."
    assert [
        (d["date"], d["total_revenue"], d["total_quantity"], d["total_transactions"]) for d in body["daily"]
    ] == [
        ("2026-03-12", 19.0, 6, 2),
        ("2026-03-13", 0.0, 0, 0),
        ("2026-03-14", 12.0, 5, 1),
        ("2026-03-15", 0.0, 0, 0),
        ("2026-03-16", 0.0, 0, 0),
        ("2026-03-17", 0.0, 0, 0),
        ("2026-03-18", 19.0, 8, 2),
    ]
    assert body["comparison"] == {
        "start_date": "2026-03-05",
        "end_date": "2026-03-11",
        "total_revenue": 14.0,
        "total_quantity": 5,
        "total_transactions": 2,
        "average_ticket": 7.0,
        "change_pct": {
            "total_revenue": 257.14,
            "total_quantity": 280.0,
            "total_transactions": 150.0,
            "average_ticket": 42.86,
        },
    }
    assert body["by_category"] == [
        {"category": "Bakery", "total_revenue": 19.0, "total_quantity": 7, "share_of_revenue": 38.0},
        {"category": "Household", "total_revenue": 16.0, "total_quantity": 4, "share_of_revenue": 32.0},
        {"category": "Beverages", "total_revenue": 15.0, "total_quantity": 8, "share_of_revenue": 30.0},
    ]


def test_daily_and_monthly_windows(api: httpx.Client) -> None:
    daily = api.get("/analytics/sales").json()
    assert (daily["start_date"], daily["end_date"], daily["kpis"]["total_revenue"]) == (
        "2026-03-18",
        "2026-03-18",
        19.0,
    )
    assert daily["comparison"]["start_date"] == "2026-03-17" and daily["comparison"]["total_revenue"] == 0.0
    assert daily["kpis"]["seasonal_hint"] is None  # nothing to compare with
    monthly = api.get("/analytics/sales", params={"period": "monthly"}).json()
    assert (monthly["start_date"], monthly["kpis"]["total_revenue"], len(monthly["daily"])) == (
        "2026-03-01",
        64.0,
        18,
    )
    quarterly = api.get("/analytics/sales", params={"period": "quarterly"}).json()
    assert (quarterly["start_date"], quarterly["kpis"]["total_revenue"]) == ("2025-12-19", 64.0)


def test_explicit_window_and_an_empty_one(api: httpx.Client) -> None:
    body = api.get("/analytics/sales", params={"start_date": "2025-12-01", "end_date": "2025-12-10"}).json()
    assert body["period_label"] == "2025-12-01 to 2025-12-10"
    assert (body["kpis"]["total_revenue"], body["kpis"]["top_products"][0]["name"]) == (10.0, "Candle")
    empty = api.get("/analytics/sales", params={"start_date": "2026-01-01", "end_date": "2026-01-03"}).json()
    assert empty["kpis"] == {
        "total_revenue": 0.0,
        "total_quantity": 0,
        "total_transactions": 0,
        "average_ticket": 0.0,
        "top_products": [],
        "seasonal_hint": None,
    }
    assert [d["total_revenue"] for d in empty["daily"]] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start_date": "2026-03-01"}, "end_date", "start_date and end_date must be given together"),
        ({"end_date": "2026-03-01"}, "start_date", "start_date and end_date must be given together"),
        ({"start_date": "2026-03-05", "end_date": "2026-03-01"}, "start_date", "must not be after end_date"),
        (
            {"start_date": "2024-01-01", "end_date": "2026-03-01"},
            "end_date",
            "longer than the maximum of 366 days",
        ),
    ],
)
def test_bad_windows_are_422_naming_the_field(
    dev_api: httpx.Client, params: dict[str, str], field: str, message: str
) -> None:
    response = dev_api.get("/analytics/sales", params=params)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == [field] and message in detail["msg"]


def test_unknown_period_is_422(dev_api: httpx.Client) -> None:
    response = dev_api.get("/analytics/sales", params={"period": "yearly"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "period"]


def test_stock_analytics_every_number(api: httpx.Client) -> None:
    body = api.get("/analytics/stock", params={"period": "weekly"}).json()
    assert (body["period"], body["period_label"], body["as_of"]) == ("weekly", "Last 7 days", "2026-03-18")
    assert body["kpis"] == {
        "total_stock_value": 970.0,
        "out_of_stock_count": 1,
        "low_stock_count": 1,
        "low_stock_ratio": 16.67,
        "urgent_reorder_count": 1,
        "dead_stock_count": 2,
        "rotation_per_year": 0.4,
        "avg_coverage_days": 140.0,  # A-1 0, B-1 140, D-1 224 (F-1 sold on one day only: no rate)
    }
    rows = {p["sku"]: p for p in body["critical_products"]}
    assert list(rows) == ["A-1", "B-1", "C-1", "E-1"]
    assert rows["A-1"] == {
        "product_id": 1,
        "sku": "A-1",
        "name": "Apple Juice",
        "status": "OUT_OF_STOCK",
        "current_stock": 0,
        "min_stock": 10,
        "unit_price": 2.0,
        "stock_value": 0.0,
        "last_sale_date": "2026-03-18",
        "coverage_days": 0.0,
        "daily_demand": 0.21,
        "demand_source": "rate",
        "reorder_point": 5,
        "suggested_order_qty": 8,
        "abc_class": "A",
        "sales_at_risk": 9.0,  # 6/28 a day over 7 + 14 days, at 2.00
    }
    assert rows["B-1"] | {} == rows["B-1"] and (
        rows["B-1"]["status"],
        rows["B-1"]["coverage_days"],
        rows["B-1"]["reorder_point"],
        rows["B-1"]["suggested_order_qty"],
        rows["B-1"]["abc_class"],
        rows["B-1"]["stock_value"],
    ) == ("LOW_STOCK", 140.0, 2, 0, "B", 15.0)
    assert (
        rows["C-1"]["status"],
        rows["C-1"]["last_sale_date"],
        rows["C-1"]["coverage_days"],
        rows["C-1"]["min_stock"],
        rows["C-1"]["abc_class"],
    ) == ("DEAD_STOCK", "2025-12-08", None, 10, "A")
    assert (rows["E-1"]["status"], rows["E-1"]["last_sale_date"], rows["E-1"]["abc_class"]) == (
        "DEAD_STOCK",
        None,
        "C",
    )
    assert [p["sku"] for p in body["reorder_suggestions"]] == ["A-1"]


def test_stock_alerts_state_their_numbers(api: httpx.Client) -> None:
    body = api.get("/stock/alerts").json()
    assert body["status"] == "ok" and body["mode"] in ("dev", "prod")
    # Bread (B-1) is below its threshold but covers 140 days: nothing to order, so no alert.
    assert [(a["sku"], a["kind"], a["severity"], a["at_stake"]) for a in body["alerts"]] == [
        ("A-1", "OUT_OF_STOCK", "high", 9.0),
    ]
    assert body["alerts"][0]["message"] == (
        "Apple Juice (A-1) is out of stock, losing about 0.21 units a day; order 8 now."
    )


def test_dev_and_prod_give_identical_answers(dev_api: httpx.Client, prod_api: httpx.Client) -> None:
    for path, params in [
        ("/analytics/sales", {"period": period}) for period in ("daily", "weekly", "monthly", "quarterly")
    ] + [
        ("/analytics/stock", {}),
        ("/analytics/sales", {"start_date": "2025-12-01", "end_date": "2026-03-18"}),
    ]:
        assert dev_api.get(path, params=params).json() == prod_api.get(path, params=params).json(), (
            path,
            params,
        )
    dev_alerts, prod_alerts = dev_api.get("/stock/alerts").json(), prod_api.get("/stock/alerts").json()
    assert (dev_alerts["mode"], prod_alerts["mode"]) == ("dev", "prod")
    assert dev_alerts["alerts"] == prod_alerts["alerts"]


def test_second_request_is_a_cache_hit(dev_api: httpx.Client) -> None:
    first = dev_api.get("/analytics/sales", params={"period": "weekly"})
    before = dev_api.get("/admin/cache").json()
    second = dev_api.get("/analytics/sales", params={"period": "weekly"})
    after = dev_api.get("/admin/cache").json()
    assert first.content == second.content
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (1, 0)


def test_redis_down_still_gives_correct_numbers(prod_api: httpx.Client, redis_server: RedisProcess) -> None:
    expected = prod_api.get("/analytics/sales", params={"period": "weekly"}).json()
    redis_server.stop()
    again = prod_api.get("/analytics/sales", params={"period": "weekly"})
    stock = prod_api.get("/analytics/stock")
    assert again.status_code == 200 and again.json() == expected
    assert stock.status_code == 200 and stock.json()["kpis"]["out_of_stock_count"] == 1


def test_analytics_need_authentication_in_prod(prod_api: httpx.Client) -> None:
    anonymous = httpx.get(f"{prod_api.base_url}analytics/sales", trust_env=False)
    assert anonymous.status_code == 401
