"""Alert routes: who may do what, filters and pages, acknowledging; the start-up check on the job runtime."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from salesflow.config import Settings
from tests.servers import wait_until


@pytest.fixture
def prod_api(serve: Callable[..., httpx.Client], prod_settings: Settings) -> httpx.Client:
    return serve(prod_settings)  # no start-up check (the suite's default): each test sees its own calls


def headers(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def test_every_alert_route_checks_the_callers_role(prod_api: httpx.Client, tokens: dict[str, str]) -> None:
    admin, user = headers(tokens, "ADMIN"), headers(tokens, "USER")
    some_id = "a" * 32
    for method, path in (("GET", "/alerts"), ("POST", "/alerts/check"), ("POST", f"/alerts/{some_id}/ack")):
        assert prod_api.request(method, path).status_code == 401
        assert prod_api.request(method, path, headers={"Authorization": "Bearer forged"}).status_code == 401
    assert prod_api.get("/alerts", headers=user).status_code == 200
    assert prod_api.post("/alerts/check", headers=user).status_code == 403
    assert prod_api.post(f"/alerts/{some_id}/ack", headers=user).status_code == 403
    assert prod_api.post("/alerts/check", headers=admin).status_code == 200


def test_an_admin_checks_lists_filters_and_acknowledges(
    prod_api: httpx.Client, tokens: dict[str, str]
) -> None:
    admin, user = headers(tokens, "ADMIN"), headers(tokens, "USER")
    checked = prod_api.post("/alerts/check", headers=admin)
    assert checked.status_code == 200, checked.text
    result = checked.json()
    opened = result["opened"]
    assert opened and result["updated"] == [] and result["resolved"] == []
    assert result["digest_mail_id"] is None  # no ALERT_RECIPIENTS: nothing to mail
    out = next(a for a in opened if a["kind"] == "OUT_OF_STOCK")
    assert out["state"] == "open" and out["severity"] == "high" and out["product"]["id"] > 0
    assert out["numbers"]["current_stock"] <= 0 and "out of stock" in out["message"]
    assert out["subject"] == f"product:{out['product']['id']}" and out["notification"] is None
    assert prod_api.post("/alerts/check", headers=admin).json()["opened"] == []  # idempotent

    everything = prod_api.get("/alerts", params={"limit": 200}, headers=user).json()
    assert everything["total"] == len(opened) == len(everything["data"])
    first_page = prod_api.get("/alerts", params={"limit": 2, "offset": 0}, headers=user).json()
    second_page = prod_api.get("/alerts", params={"limit": 2, "offset": 2}, headers=user).json()
    assert len(first_page["data"]) == 2 and first_page["total"] == len(opened)
    assert not {a["id"] for a in first_page["data"]} & {a["id"] for a in second_page["data"]}
    only_out = prod_api.get("/alerts", params={"kind": "OUT_OF_STOCK", "limit": 200}, headers=user).json()
    assert only_out["total"] == sum(a["kind"] == "OUT_OF_STOCK" for a in opened)
    assert {a["kind"] for a in only_out["data"]} == {"OUT_OF_STOCK"}
    high = prod_api.get("/alerts", params={"severity": "high", "limit": 200}, headers=user).json()
    assert {a["severity"] for a in high["data"]} == {"high"}
    product = prod_api.get("/alerts", params={"product": out["product"]["id"]}, headers=user).json()
    assert [a["id"] for a in product["data"]] == [out["id"]]

    acked = prod_api.post(f"/alerts/{out['id']}/ack", headers=admin)
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "admin" and acked.json()["acknowledged_at"]
    assert prod_api.post(f"/alerts/{out['id']}/ack", headers=admin).json()["state"] == "acknowledged"
    listed = prod_api.get("/alerts", params={"state": "acknowledged"}, headers=user).json()
    assert [a["id"] for a in listed["data"]] == [out["id"]]
    assert prod_api.get("/alerts", params={"state": "open", "limit": 200}, headers=user).json()["total"] == (
        len(opened) - 1
    )


@pytest.mark.parametrize("crafted", ["b" * 32, "x" * 5000, "..%2F..%2Fetc", "%00"])
def test_acknowledging_an_unknown_alert_is_a_404(
    prod_api: httpx.Client, tokens: dict[str, str], crafted: str
) -> None:
    answer = prod_api.post(f"/alerts/{crafted}/ack", headers=headers(tokens, "ADMIN"))
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "FIRE"}, "kind"),
        ({"state": "closed"}, "state"),
        ({"severity": "urgent"}, "severity"),
        ({"product": "abc"}, "product"),
        ({"product": 2**40}, "product"),  # beyond the id column's range: a 422, not a database error
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_bad_filters_are_a_422_naming_the_field(
    prod_api: httpx.Client, tokens: dict[str, str], params: dict[str, str | int], field: str
) -> None:
    answer = prod_api.get("/alerts", params=params, headers=headers(tokens, "USER"))
    assert answer.status_code == 422
    assert field in answer.text


def test_the_alerts_are_checked_once_at_start_up_on_the_job_runtime(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], store_file: object
) -> None:
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None, scheduler_enabled=True))

    def checked() -> bool:
        return int(api.get("/alerts").json()["total"]) > 0

    wait_until(checked, timeout=60, interval=0.1, what="the start-up alert check")
    kinds = {a["kind"] for a in api.get("/alerts", params={"limit": 200}).json()["data"]}
    assert "OUT_OF_STOCK" in kinds
