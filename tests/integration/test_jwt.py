"""JWT validation: Java's tokens accepted, everything else refused with a precise reason."""

from __future__ import annotations

import time

import jwt
import pytest

from salesflow.errors import AuthError
from salesflow.integration.jwt import TokenValidator, normalise_roles
from tests.java_standin import DEV_SECRET

KEY = DEV_SECRET.encode()


def token(claims: dict[str, object] | None = None, *, key: bytes = KEY, algorithm: str = "HS256", **extra):
    now = int(time.time())
    body = {
        "sub": "0000000000",
        "iss": "salesflow-app",
        "role": "ADMIN",
        "username": "admin",
        "iat": now,
        "exp": now + 3600,
    }
    body.update(claims or {})
    body.update(extra)
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm, headers={"typ": None}
    )


@pytest.fixture
def validator() -> TokenValidator:
    return TokenValidator(secret=KEY, issuer="salesflow-app", leeway_seconds=10)


def test_java_access_token_becomes_a_user(validator: TokenValidator) -> None:
    user = validator.validate(token())
    assert (user.subject, user.username, user.roles) == ("0000000000", "admin", frozenset({"ADMIN"}))
    assert user.token is not None and user.token.get_secret_value().count(".") == 2


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"role": "USER"}, {"USER"}),
        ({"role": "ROLE_ADMIN"}, {"ADMIN"}),
        ({"role": None, "roles": ["ROLE_USER", "admin"]}, {"USER", "ADMIN"}),
        ({"role": None, "authorities": [{"authority": "ROLE_ADMIN"}]}, {"ADMIN"}),
        ({"role": None, "authorities": ["ROLE_USER"]}, {"USER"}),
    ],
)
def test_roles_are_normalised_from_any_claim(claims: dict[str, object], expected: set[str]) -> None:
    assert normalise_roles({k: v for k, v in claims.items() if v is not None}) == expected


@pytest.mark.parametrize(
    ("bad_token", "reason"),
    [
        (token(exp=int(time.time()) - 60), "Token expired"),
        (token(key=b"another-secret-that-is-long-enough-!!"), "Invalid token signature"),
        (token(iss="someone-else"), "Invalid token issuer"),
        (token(role=None), "Token carries no role"),
        (token(exp=None), "Token is missing the 'exp' claim"),
        (token(algorithm="HS384"), "Unsupported token algorithm 'HS384'"),
        (
            jwt.encode({"sub": "x", "role": "ADMIN", "iss": "salesflow-app"}, None, algorithm="none"),
            "Unsupported token algorithm 'none'",
        ),
        ("not-a-jwt", "Malformed token"),
        ("dev-token-123456", "Malformed token"),
    ],
)
def test_bad_tokens_are_refused_with_a_precise_reason(
    validator: TokenValidator, bad_token: str, reason: str
) -> None:
    with pytest.raises(AuthError, match=reason):
        validator.validate(bad_token)


def test_leeway_accepts_a_token_that_just_expired(validator: TokenValidator) -> None:
    assert validator.validate(token(exp=int(time.time()) - 5)).subject == "0000000000"


def test_secret_with_a_space_is_not_trimmed() -> None:
    trimmed = TokenValidator(secret=DEV_SECRET.strip().replace(" ", "").encode(), issuer="salesflow-app")
    with pytest.raises(AuthError, match="Invalid token signature"):
        trimmed.validate(token())
