"""Builders shared by the tests."""

from __future__ import annotations

import time

import jwt

from tests.java_standin import DEV_SECRET, ISSUER


def make_token(
    *, key: bytes | None = DEV_SECRET.encode(), algorithm: str = "HS256", **changes: object
) -> str:
    """A token shaped like Java's ADMIN access token; `changes` override claims (None removes one)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "0000000000",
        "iss": ISSUER,
        "role": "ADMIN",
        "username": "admin",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(changes)
    present = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(present, key, algorithm=algorithm, headers={"typ": None})
