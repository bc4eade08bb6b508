"""Client mistakes get a client status naming the field, never a 500 (issue 19's first defects)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from salesflow.config import Settings
from tests.servers import late_loop_ticks


@pytest.fixture
def prod_api(serve: Callable[..., httpx.Client], prod_settings: Settings) -> httpx.Client:
    return serve(prod_settings)


def admin(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['ADMIN']}"}


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_a_number_json_cannot_carry_is_a_422(
    prod_api: httpx.Client, tokens: dict[str, str], number: bytes
) -> None:
    body = b'{"scope": "GLOBAL", "forecast_days": ' + number + b"}"
    answer = prod_api.post(
        "/ml/forecast", content=body, headers=admin(tokens) | {"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    [issue] = answer.json()["detail"]
    assert issue["loc"][-1] == "forecast_days" and isinstance(issue["input"], str)


def test_an_offset_past_the_limit_is_a_422(prod_api: httpx.Client, tokens: dict[str, str]) -> None:
    for path in ("/reports/jobs", "/alerts"):
        answer = prod_api.get(path, params={"offset": 9223372036854775808}, headers=admin(tokens))
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "offset"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_window_outside_the_calendar_it_can_compare_with_is_a_422(
    prod_api: httpx.Client, tokens: dict[str, str], day: str
) -> None:
    window = {"start_date": day, "end_date": day}
    answer = prod_api.get("/analytics/sales", params=window, headers=admin(tokens))
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["start_date"]
    job = prod_api.post("/reports/jobs", json={"report_type": "sales", **window}, headers=admin(tokens))
    assert job.status_code == 422  # at submission, not a job that fails later


def test_a_daily_schedule_can_be_changed_and_disabled(prod_api: httpx.Client, tokens: dict[str, str]) -> None:
    created = prod_api.post(
        "/reports/schedule",
        json={"report_type": "sales", "format": "pdf", "hour": 7, "minute": 0},
        headers=admin(tokens),
    ).json()
    path = f"/reports/schedules/{created['job_id']}"
    assert prod_api.patch(path, json={}, headers=admin(tokens)).status_code == 200
    changed = prod_api.patch(path, json={"enabled": False, "hour": 8}, headers=admin(tokens))
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["hour"], changed.json()["weekdays"]) == (False, 8, [])


@pytest.mark.parametrize(
    "address",
    [
        "boss\r\nBcc: x@evil.test@shop.test",
        "bôss@shop.test",
        "=?utf-8?q?boss?=@shop.test",
        "boss@shop",
        "a@b@c.d",
    ],
)
def test_a_schedule_refuses_an_address_a_mail_server_would_refuse(
    prod_api: httpx.Client, tokens: dict[str, str], address: str
) -> None:
    answer = prod_api.post(
        "/reports/schedules",
        json={"report_type": "sales", "hour": 7, "recipients": ["boss@shop.test", address]},
        headers=admin(tokens),
    )
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][-2:] == ["recipients", 1]


@pytest.mark.parametrize("record", ["0" * 31 + "%00", "a" * 10_000, "%2E%2E" * 16])
def test_an_id_no_record_can_have_is_a_404_on_every_engine(
    serve: Callable[..., httpx.Client],
    prod_settings: Settings,
    state_url: str,
    tokens: dict[str, str],
    record: str,
) -> None:
    """On PostgreSQL a NUL or an overlong id was "the state database is unavailable" (503)."""
    api = serve(prod_settings.replaced(state_database_url=state_url))
    for path in (f"/reports/jobs/{record}", f"/reports/schedules/{record}", f"/excel/imports/{record}"):
        assert api.get(path, headers=admin(tokens)).status_code == 404, path
    assert api.post(f"/alerts/{record}/ack", headers=admin(tokens)).status_code == 404


def test_no_answer_reflects_the_host_header(prod_api: httpx.Client, tokens: dict[str, str]) -> None:
    answer = prod_api.get("/alerts/", headers=admin(tokens) | {"Host": "evil.example"})
    assert answer.status_code == 404 and "evil.example" not in answer.headers.get("location", "")


def test_a_huge_list_is_refused_by_its_size_and_not_echoed(
    prod_api: httpx.Client, tokens: dict[str, str]
) -> None:
    """`level` with 340,000 numbers (two distinct) once held the event loop ~10 s per request."""
    body = {"scope": "GLOBAL", "forecast_days": 7, "level": [80, 95] * 170_000}
    late_before = late_loop_ticks()
    answer = prod_api.post("/ml/forecast", json=body, headers=admin(tokens))
    assert prod_api.get("/health").status_code == 200  # the loop has turned since: a stall is counted
    assert late_loop_ticks() == late_before  # no event loop stalled a second or more meanwhile
    assert answer.status_code == 422 and len(answer.content) < 2_000
    [issue] = answer.json()["detail"]
    assert issue["loc"][-1] == "level" and issue["input"][-1] == "… (340,000 items)"
    fine = prod_api.post("/ml/forecast", json={**body, "level": [80, 95]}, headers=admin(tokens))
    assert fine.status_code == 200


def test_a_long_string_is_echoed_shortened(prod_api: httpx.Client, tokens: dict[str, str]) -> None:
    body = {"scope": "GLOBAL", "forecast_days": "x" * 100_000}
    answer = prod_api.post("/ml/forecast", json=body, headers=admin(tokens))
    assert answer.status_code == 422 and len(answer.content) < 2_000
    assert answer.json()["detail"][0]["input"].endswith("… (100,000 characters)")


def test_a_method_not_allowed_names_every_method_of_the_path(
    prod_api: httpx.Client, tokens: dict[str, str]
) -> None:
    """`/reports/jobs` is served by a GET and a POST route: Starlette's 405 named only the first's methods."""
    answer = prod_api.request("PUT", "/reports/jobs", headers=admin(tokens))
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} >= {"GET", "POST"}
