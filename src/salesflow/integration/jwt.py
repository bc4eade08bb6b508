"""Validation of Java-issued JWTs (HS256 over the raw UTF-8 bytes of the shared secret)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import jwt
from pydantic import SecretStr

from salesflow.errors import AuthError, TokenExpired
from salesflow.models.auth import Role, User

# Java signs with HS256 only; old builds used HS384 and `none` is never acceptable (java-system-of-record.md).
MAX_TOKEN_CHARS = 8192
ACCEPTED_ALGORITHMS = ["HS256"]
DEV_USER = User(subject="dev", username="dev", roles=frozenset({Role.ADMIN, Role.USER}), is_dev=True)


class TokenValidator:
    """Turns a bearer token into a `User`, or raises `AuthError` with a precise detail."""

    def __init__(self, *, secret: bytes, issuer: str, leeway_seconds: int = 30) -> None:
        self.secret = secret
        self.issuer = issuer
        self.leeway_seconds = leeway_seconds

    def validate(self, token: str) -> User:
        claims = self._decode(token)
        roles = normalise_roles(claims)
        if not roles:
            raise AuthError("Token carries no role (a refresh token cannot call the API)")
        subject = str(claims.get("sub") or "")
        if not subject:
            raise AuthError("Token has no subject")
        return User(
            subject=subject,
            username=str(claims.get("username") or subject),
            roles=roles,
            token=SecretStr(token),
        )

    def _decode(self, token: str) -> dict[str, object]:
        if len(token) > MAX_TOKEN_CHARS:  # Java's are a few hundred: never spend a decode on a giant
            raise AuthError(f"Token too large ({len(token)} characters; at most {MAX_TOKEN_CHARS})")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError("Malformed token") from exc
        if header.get("alg") not in ACCEPTED_ALGORITHMS:
            raise AuthError(f"Unsupported token algorithm {header.get('alg')!r}: only HS256 is accepted")
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self.secret,
                algorithms=ACCEPTED_ALGORITHMS,
                issuer=self.issuer,
                leeway=timedelta(seconds=self.leeway_seconds),
                options={"require": ["exp", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("Token expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("Invalid token signature") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("Invalid token issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"Token is missing the {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("Malformed token") from exc
        return claims


def normalise_roles(claims: dict[str, object]) -> frozenset[str]:
    """Roles from `role` (string), `roles` (list) or `authorities`, without any `ROLE_` prefix."""
    found: list[str] = []
    for key in ("role", "roles", "authorities"):
        found.extend(_role_names(claims.get(key)))
    return frozenset(
        name.upper().removeprefix("ROLE_") for name in found if name.upper().removeprefix("ROLE_")
    )


def _role_names(value: object) -> Iterable[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if isinstance(value, list):
        names = []
        for item in value:
            if isinstance(item, str):
                names.append(item.strip())
            elif isinstance(item, dict) and isinstance(item.get("authority"), str):
                names.append(item["authority"].strip())  # Spring's {"authority": "ROLE_X"} form
        return names
    return []
