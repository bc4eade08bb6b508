"""Cross-cutting behaviour of the app: health, errors, request ids, CORS, OpenAPI, the envelope route."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from fastapi import APIRouter

from salesflow.api.envelope import EnvelopeRoute, unwrap_envelope
from salesflow.api.main import create_app
from salesflow.api.routes import admin, auth, health
from salesflow.config import Settings


def test_liveness_touches_nothing_and_names_the_service(dev_api: httpx.Client) -> None:
    response = dev_api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "salesflow-analytics", "version": "0.1.0"}


def test_readiness_reports_each_dependency(dev_api: httpx.Client) -> None:
    body = dev_api.get("/health/ready").json()
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "data_source": "ok",
        "state_database": "ok",
        "redis": "disabled",
        "disk": "ok",
        "mail_outbox": "ok",
        "scheduler": "disabled",
    }


def test_every_response_carries_a_request_id_and_echoes_a_valid_one(dev_api: httpx.Client) -> None:
    generated = dev_api.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    assert dev_api.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    too_long = "x" * 65
    forged = dev_api.get("/health", headers={"X-Request-ID": "<script>"}).headers["X-Request-ID"]
    assert (
        len(forged) == 32
        and dev_api.get("/health", headers={"X-Request-ID": too_long}).headers["X-Request-ID"] != too_long
    )


def test_unknown_route_is_a_json_404(dev_api: httpx.Client) -> None:
    response = dev_api.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert "X-Request-ID" in response.headers


def test_unexpected_error_is_a_generic_500_logged_with_its_request_id(
    serve: Callable[..., httpx.Client],
    make_settings: Callable[..., Settings],
    store_file,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(make_settings(dev_mode=True, java_jwt_secret=None))
    boom = APIRouter()

    @boom.get("/api/v1/boom")
    async def explode() -> None:
        raise RuntimeError("database password is hunter2")

    app.include_router(boom)
    api = serve(app)
    with caplog.at_level(logging.INFO):
        response = api.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "hunter2" not in response.text
    request_id = response.headers["X-Request-ID"]
    errors = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert errors and errors[0].exc_info is not None
    access = [r for r in caplog.records if r.getMessage() == "request" and getattr(r, "status", None) == 500]
    assert access and access[0].__dict__["route"] == "/api/v1/boom"
    assert request_id  # the JSON formatter adds it from the context; see test_observability


def test_cors_allows_the_frontend_and_exposes_content_disposition(dev_api: httpx.Client) -> None:
    origin = "http://127.0.0.1:5174"
    preflight = dev_api.options(
        "/analytics/sales",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    simple = dev_api.get("/health", headers={"Origin": origin})
    assert "Content-Disposition" in simple.headers["access-control-expose-headers"]
    stranger = dev_api.get("/health", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in stranger.headers


def test_openapi_declares_bearer_auth_on_protected_routes(dev_api: httpx.Client) -> None:
    spec = httpx.get(dev_api.base_url.copy_with(path="/openapi.json"), trust_env=False).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/auth/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/api/v1/health"]["get"]


def test_every_router_unwraps_the_envelope() -> None:
    for module in (health, auth, admin):
        assert module.router.route_class is EnvelopeRoute, module.__name__
        for route in module.router.routes:
            assert isinstance(route, EnvelopeRoute), route


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"payload": {"a": 1}, "required_roles": ["ADMIN"]}', b'{"a":1}'),
        (b'{"payload": [1, 2]}', b"[1,2]"),
        (b'{"payload": {"a": 1}, "other": 2}', None),
        (b'{"a": 1}', None),
        (b"not json", None),
    ],
)
def test_unwrap_envelope_only_unwraps_the_exact_envelope(body: bytes, expected: bytes | None) -> None:
    assert unwrap_envelope(body) == expected
