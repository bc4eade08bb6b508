"""JWT validation: Java's tokens accepted, everything else refused with a precise reason."""

from __future__ import annotations

import time

import jwt
import pytest

from salesflow.errors import AuthError
from salesflow.integration.java_demo import DEV_SECRET
from salesflow.integration.jwt import TokenValidator, normalise_roles
from tests.builders import make_token

KEY = DEV_SECRET.encode()


@pytest.fixture
def validator() -> TokenValidator:
    return TokenValidator(secret=KEY, issuer="salesflow-app", leeway_seconds=10)


def test_java_access_token_becomes_a_user(validator: TokenValidator) -> None:
    user = validator.validate(make_token())
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
        (make_token(exp=int(time.time()) - 60), "Token expired"),
        (make_token(key=b"another-secret-that-is-long-enough-!!"), "Invalid token signature"),
        (make_token(iss="someone-else"), "Invalid token issuer"),
        (make_token(role=None), "Token carries no role"),
        (make_token(exp=None), "Token is missing the 'exp' claim"),
        (make_token(algorithm="HS384"), "Unsupported token algorithm 'HS384'"),
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
    assert validator.validate(make_token(exp=int(time.time()) - 5)).subject == "0000000000"


def test_secret_with_a_space_is_not_trimmed() -> None:
    trimmed = TokenValidator(secret=DEV_SECRET.strip().replace(" ", "").encode(), issuer="salesflow-app")
    with pytest.raises(AuthError, match="Invalid token signature"):
        trimmed.validate(make_token())


def _with_header(token: str, header: dict[str, object]) -> str:
    """The token's claims and signature under another header (what an attacker can write freely)."""
    import base64
    import json

    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    _, claims, signature = token.split(".")
    return f"{encoded}.{claims}.{signature}"


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        # Algorithm confusion: an asymmetric algorithm named over an HMAC signature made with the secret.
        (_with_header(make_token(), {"alg": "RS256", "typ": "JWT"}), "Unsupported token algorithm 'RS256'"),
        # The signature stripped off, the algorithm left as it was.
        (make_token().rsplit(".", 1)[0] + ".", "Invalid token signature"),
        # A forged role: the USER's claims rewritten to ADMIN, signed with a key of the attacker's.
        (make_token(role="ADMIN", key=b"attacker-key-that-is-long-enough!!!!"), "Invalid token signature"),
        # A huge token (here, past the header limit the HTTP layer enforces first; see test_request_limits).
        (make_token(padding="x" * 200_000), "Token too large"),
    ],
)
def test_the_jwt_attack_matrix_is_refused(validator: TokenValidator, attack: str, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        validator.validate(attack)
