"""Schedule routes: ADMIN only, validated, the frontend's two calls."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from salesflow.config import Settings


@pytest.fixture
def prod_api(serve: Callable[..., httpx.Client], prod_settings: Settings) -> httpx.Client:
    return serve(prod_settings)


def test_an_admin_manages_schedules_and_a_user_cannot(prod_api: httpx.Client, tokens: dict[str, str]) -> None:
    admin, user = ({"Authorization": f"Bearer {tokens[r]}"} for r in ("ADMIN", "USER"))
    body = {
        "report_type": "sales",
        "format": "excel",
        "period": "weekly",
        "frequency": "weekly",
        "weekdays": [0, 4],
        "hour": 7,
        "minute": 30,
        "timezone": "Europe/Paris",
        "recipients": ["manager@shop.local"],
    }
    assert prod_api.post("/reports/schedules", json=body, headers=user).status_code == 403
    created = prod_api.post("/reports/schedules", json=body, headers=admin)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["weekdays"] == [0, 4] and schedule["timezone"] == "Europe/Paris" and schedule["enabled"]
    assert schedule["next_run_at"] is not None and schedule["owner"] == "admin"
    path = f"/reports/schedules/{schedule['schedule_id']}"
    patched = prod_api.patch(path, json={"hour": 8, "enabled": False}, headers=admin).json()
    assert patched["hour"] == 8 and patched["enabled"] is False and patched["next_run_at"] is None
    assert prod_api.get("/reports/schedules", headers=admin).json()["total"] == 1
    assert prod_api.get(f"{path}/runs", headers=admin).json()["data"] == []
    assert prod_api.get(path, headers=user).status_code == 403
    assert prod_api.delete(path, headers=admin).status_code == 204
    assert prod_api.get(path, headers=admin).status_code == 404
    for crafted in ("x" * 5000, "../" + schedule["schedule_id"], "%00"):
        assert prod_api.get(f"/reports/schedules/{crafted}", headers=admin).status_code == 404
        assert (
            prod_api.patch(f"/reports/schedules/{crafted}", json={"hour": 1}, headers=admin).status_code
            == 404
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hour": 24}, "hour"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"frequency": "weekly"}, None),
        ({"frequency": "monthly", "day_of_month": 30}, "day_of_month"),
        ({"recipients": ["not an address"]}, "recipients"),
        ({"hour": 1e308}, "hour"),
        ({"minute": "NaN"}, "minute"),
    ],
)
def test_a_bad_schedule_is_a_422_naming_the_field(
    prod_api: httpx.Client, tokens: dict[str, str], change: dict[str, object], field: str | None
) -> None:
    body = {"report_type": "stock", "hour": 6, **change}
    response = prod_api.post(
        "/reports/schedules", json=body, headers={"Authorization": f"Bearer {tokens['ADMIN']}"}
    )
    assert response.status_code == 422
    if field is not None:
        assert any(field in issue["loc"] for issue in response.json()["detail"])


def test_the_frontends_schedule_calls(prod_api: httpx.Client, tokens: dict[str, str]) -> None:
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    answer = prod_api.post(
        "/reports/schedule",
        json={"report_type": "stock", "format": "pdf", "hour": 6, "minute": 5},
        headers=admin,
    ).json()
    assert answer["status"] == "scheduled" and (answer["hour"], answer["minute"]) == (6, 5)
    assert "/" not in answer["storage"]  # never a server path
    again = prod_api.post(
        "/reports/schedule",
        json={"report_type": "stock", "format": "pdf", "hour": 6, "minute": 5},
        headers=admin,
    ).json()
    assert again["job_id"] == answer["job_id"]  # the same daily report asked twice: one schedule
    assert (
        prod_api.get(f"/reports/schedules/{answer['job_id']}", headers=admin).json()["frequency"] == "daily"
    )
    latest = prod_api.get(
        "/reports/scheduled/latest", params={"report_type": "stock", "format": "pdf"}, headers=admin
    )
    assert latest.status_code == 404 and "No scheduled stock report" in latest.json()["detail"]
