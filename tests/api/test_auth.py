"""The auth matrix over HTTP: Java tokens, every way a token can be wrong, roles, DEV bypass, envelope."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from salesflow.config import Settings
from tests.builders import make_token


@pytest.fixture
def api(serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings]) -> httpx.Client:
    """PROD-mode app (JWT auth) on the embedded source."""
    return serve(make_settings())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_user_token_from_java_reads_me(api: httpx.Client, tokens: dict[str, str]) -> None:
    response = api.get("/auth/me", headers=bearer(tokens["USER"]))
    assert response.status_code == 200
    assert response.json() == {
        "subject": "0600000001",
        "username": "clerk",
        "roles": ["USER"],
        "dev_mode": False,
    }


def test_admin_route_accepts_admin(api: httpx.Client, tokens: dict[str, str]) -> None:
    response = api.get("/admin/cache", headers=bearer(tokens["ADMIN"]))
    assert response.status_code == 200
    assert response.json()["backend"] == "memory"


def test_admin_route_refuses_user_with_403(api: httpx.Client, tokens: dict[str, str]) -> None:
    response = api.get("/admin/cache", headers=bearer(tokens["USER"]))
    assert response.status_code == 403
    assert response.json() == {"detail": "This action requires the role ADMIN"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Missing Authorization header"),
        ({"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="}, "Authorization header must use the Bearer scheme"),
        ({"Authorization": "Bearer"}, "Bearer token is empty"),
        (bearer("abc.def"), "Malformed token"),
        (bearer("dev-token-123456"), "Malformed token"),
        (bearer(make_token(key=b"x" * 40)), "Invalid token signature"),
        (bearer(make_token(iss="elsewhere")), "Invalid token issuer"),
        (bearer(make_token(exp=int(time.time()) - 3600)), "Token expired"),
        (
            bearer(make_token(algorithm="HS384")),
            "Unsupported token algorithm 'HS384': only HS256 is accepted",
        ),
        (
            bearer(make_token(algorithm="none", key=None)),
            "Unsupported token algorithm 'none': only HS256 is accepted",
        ),
        (bearer(make_token(role=None)), "Token carries no role (a refresh token cannot call the API)"),
    ],
)
def test_bad_credentials_get_401_with_a_precise_detail(
    api: httpx.Client, headers: dict[str, str], detail: str
) -> None:
    response = api.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": detail}


def test_java_refresh_token_cannot_call_the_api(api: httpx.Client, standin) -> None:
    _, state = standin
    refresh = state.issue_refresh_token(state.users["0000000000"])
    response = api.get("/auth/me", headers=bearer(refresh))
    assert response.status_code == 401
    assert "refresh token" in response.json()["detail"]


def test_post_accepts_the_frontend_envelope_and_the_bare_body(
    api: httpx.Client, tokens: dict[str, str]
) -> None:
    for body in ({"payload": {"pipeline": "analytics"}, "required_roles": []}, {"pipeline": "analytics"}):
        response = api.post("/admin/cache/invalidate", json=body, headers=bearer(tokens["ADMIN"]))
        assert response.status_code == 200, response.text
        assert response.json() == {"removed": 0}


def test_envelope_payload_is_validated_like_a_bare_body(api: httpx.Client, tokens: dict[str, str]) -> None:
    response = api.post(
        "/admin/cache/invalidate",
        json={"payload": {"pipeline": "NOT VALID"}},
        headers=bearer(tokens["ADMIN"]),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "pipeline"]


def test_required_roles_in_the_envelope_grant_nothing(api: httpx.Client, tokens: dict[str, str]) -> None:
    body = {"payload": {}, "required_roles": ["ADMIN"]}
    response = api.post("/admin/cache/invalidate", json=body, headers=bearer(tokens["USER"]))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "headers", [{}, bearer("dev-token-123456"), bearer("anything"), bearer(make_token(iss="x"))]
)
def test_dev_mode_treats_every_caller_as_dev_admin(
    serve: Callable[..., httpx.Client],
    make_settings: Callable[..., Settings],
    store_file,
    headers: dict[str, str],
) -> None:
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None))
    me = api.get("/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json() == {"subject": "dev", "username": "dev", "roles": ["ADMIN", "USER"], "dev_mode": True}
    assert api.get("/admin/cache", headers=headers).status_code == 200
