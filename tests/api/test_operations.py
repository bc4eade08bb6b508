"""Operations: `GET /metrics` (who may read it, what it counts), the OpenAPI pages' exposure, and the
security headers every response carries."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from ipaddress import ip_network

import httpx
import pytest
from pydantic import SecretStr

from salesflow.api.deps import client_address
from salesflow.config import Settings
from tests.builders import make_token
from tests.servers import sample

METRICS_TOKEN = "m" * 32


def metrics_of(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.get(client.base_url.copy_with(path="/metrics"), headers=headers)


def test_metrics_count_requests_per_route_and_cache_lookups_per_pipeline(dev_api: httpx.Client) -> None:
    before = metrics_of(dev_api).text
    route = "/api/v1/analytics/sales"
    assert dev_api.get("/analytics/sales", params={"period": "weekly"}).status_code == 200
    assert dev_api.get("/analytics/sales", params={"period": "weekly"}).status_code == 200
    assert dev_api.get("/no/such/route").status_code == 404
    response = metrics_of(dev_api)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = response.text
    counted = "salesflow_http_requests_total"
    assert (
        sample(after, counted, route=route, status="200") - sample(before, counted, route=route, status="200")
        == 2
    )
    # The same sample on both sides: other tests in this process counted unmatched routes of other statuses.
    assert sample(after, counted, route="unmatched", status="404") > sample(
        before, counted, route="unmatched", status="404"
    )
    assert sample(after, "salesflow_http_request_duration_seconds_count", route=route) >= 2
    lookups = "salesflow_cache_lookups_total"
    assert sample(after, lookups, pipeline="analytics", result="hit") > sample(
        before, lookups, pipeline="analytics", result="hit"
    )
    for family in (
        "salesflow_java_calls",
        "salesflow_jobs",
        "salesflow_mails",
        "salesflow_alert_evaluations",
    ):
        assert f"# TYPE {family}_total counter" in after or f"# TYPE {family} counter" in after


def test_in_production_metrics_need_the_token_or_an_admin(
    make_settings: Callable[..., Settings],
    prod_settings: Settings,
    serve: Callable[[Settings], httpx.Client],
    tokens: dict[str, str],
) -> None:
    client = serve(prod_settings.replaced(metrics_token=SecretStr(METRICS_TOKEN)))
    assert metrics_of(client).status_code == 401
    assert metrics_of(client, Authorization="Bearer wrong-token").status_code == 401
    assert metrics_of(client, Authorization=f"Bearer {tokens['USER']}").status_code == 403
    assert metrics_of(client, Authorization=f"Bearer {tokens['ADMIN']}").status_code == 200
    scraped = metrics_of(client, Authorization=f"Bearer {METRICS_TOKEN}")
    assert scraped.status_code == 200 and "salesflow_http_requests_total" in scraped.text
    assert METRICS_TOKEN not in scraped.text
    # The OpenAPI pages are off in production unless asked for.
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(client.base_url.copy_with(path=path)).status_code == 404


def test_metrics_can_be_switched_off(make_settings: Callable[..., Settings], serve, store_file) -> None:
    client = serve(make_settings(metrics_enabled=False))
    assert metrics_of(client).status_code == 404


def test_a_short_metrics_token_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="METRICS_TOKEN must be at least 24 characters"):
        make_settings(metrics_token="short")


@pytest.mark.parametrize(
    ("path", "status"), [("/health", 200), ("/analytics/sales?period=weekly", 200), ("/no/such", 404)]
)
def test_every_response_carries_the_security_headers(dev_api: httpx.Client, path: str, status: int) -> None:
    response = dev_api.get(path)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_docs_page_can_load_swagger(dev_api: httpx.Client) -> None:
    page = dev_api.get(dev_api.base_url.copy_with(path="/docs"))
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert "content-security-policy" not in page.headers
    assert page.headers["x-frame-options"] == "DENY"


def test_every_route_checks_the_callers_role(
    prod_settings: Settings, serve: Callable[[Settings], httpx.Client], tokens: dict[str, str]
) -> None:
    """Walks every operation of the app's OpenAPI document (new routes included): each protected one answers
    401 without a token or with a forged one, before doing anything; a USER gets 403 from each one that
    needs ADMIN; the only operations open to anyone are the health checks (and `/metrics`, which checks
    its own token)."""
    from salesflow.api.main import create_app

    settings = prod_settings.replaced(rate_limit_auth_failures=0)  # it fails on purpose, often
    spec = create_app(settings).openapi()
    client = serve(settings)
    user = {"Authorization": f"Bearer {tokens['USER']}"}
    forged = {"Authorization": "Bearer forged.token.value"}
    open_paths, checked, admin_only = set(), 0, 0
    for template, operations in spec["paths"].items():
        path = re.sub(r"\{[^}]+\}", "a" * 32, template)
        url = client.base_url.copy_with(path=path)
        for method, operation in operations.items():
            if "401" not in operation["responses"]:
                open_paths.add(template)
                continue
            assert "429" in operation["responses"], (method, template)  # the failed-authentication limit
            assert client.request(method, url).status_code == 401, (method, path)
            assert client.request(method, url, headers=forged).status_code == 401, (method, path)
            checked += 1
            if "403" in operation["responses"]:
                assert client.request(method, url, headers=user).status_code == 403, (method, path)
                admin_only += 1
    assert open_paths == {"/api/v1/health", "/api/v1/health/ready", "/metrics"}
    assert checked >= 30 and admin_only >= 8, (checked, admin_only)
    assert metrics_of(client).status_code == 401


def test_expensive_requests_are_limited_per_user_across_processes(
    prod_settings: Settings, serve: Callable[[Settings], httpx.Client], tokens: dict[str, str]
) -> None:
    """Two API processes share the count through Redis: the fourth forecast of a user within the minute is
    a 429 with Retry-After, whichever process gets it; another user still gets answers."""
    settings = prod_settings.replaced(rate_limit_expensive=3)
    first, second = serve(settings), serve(settings)
    user = {"Authorization": f"Bearer {tokens['USER']}"}
    body = {"scope": "GLOBAL", "forecast_days": 7}
    assert [
        api.post("/ml/forecast", json=body, headers=user).status_code for api in (first, second, first)
    ] == [
        200,
        200,
        200,
    ]
    refused = second.post("/ml/forecast", json=body, headers=user)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "at most 3 a minute" in refused.json()["detail"]
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    assert first.post("/ml/forecast", json=body, headers=admin).status_code == 200
    assert first.get("/analytics/sales", params={"period": "weekly"}, headers=user).status_code == 200


def test_failed_authentications_are_limited_per_client(
    prod_settings: Settings, serve: Callable[[Settings], httpx.Client], tokens: dict[str, str]
) -> None:
    api = serve(prod_settings.replaced(rate_limit_auth_failures=3))
    forged = {"Authorization": "Bearer forged.token.value"}
    statuses = [api.get("/analytics/sales", headers=forged).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    # The guard counts too (a request with a body is authenticated before it is read).
    refused = api.post("/ml/forecast", json={"scope": "GLOBAL"}, headers=forged)
    assert refused.status_code == 429 and "failed authentications" in refused.json()["detail"]
    assert "retry-after" in refused.headers
    # `/metrics` checks its own token, and a wrong one counts like any other failed authentication.
    assert metrics_of(api, Authorization="Bearer guessed-metrics-token").status_code == 429
    # A valid token is never refused for others' failures.
    good = {"Authorization": f"Bearer {tokens['USER']}"}
    assert api.get("/analytics/sales", params={"period": "weekly"}, headers=good).status_code == 200
    # Nor is a genuine one that expired: the frontend must learn to log in again (401), not to wait (429).
    now = int(time.time())
    expired = {"Authorization": f"Bearer {make_token(iat=now - 7200, exp=now - 3600)}"}
    for _ in range(5):
        answer = api.get("/analytics/sales", headers=expired)
        assert answer.status_code == 401 and answer.json()["detail"] == "Token expired"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: its header is ignored
        ("10.0.0.2", None, "10.0.0.2"),  # a trusted proxy that names no one is the client
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # the forged left part is skipped
        ("10.0.0.2", "198.51.100.1, not-an-address", "10.0.0.2"),
        ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_is_named_by_trusted_proxies_only(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    assert client_address(peer, forwarded_for, [ip_network("10.0.0.0/8")]) == client


def test_behind_a_trusted_proxy_each_client_has_its_own_failed_authentication_count(
    prod_settings: Settings, serve: Callable[[Settings], httpx.Client]
) -> None:
    settings = prod_settings.replaced(
        rate_limit_auth_failures=2, trusted_proxies=[ip_network("127.0.0.1/32")]
    )
    api = serve(settings)
    forged = {"Authorization": "Bearer forged.token.value"}

    def status(client: str) -> int:
        return api.get("/analytics/sales", headers=forged | {"X-Forwarded-For": client}).status_code

    assert [status("198.51.100.1") for _ in range(3)] == [401, 401, 429]
    assert status("198.51.100.2") == 401  # another client behind the same proxy is not refused
