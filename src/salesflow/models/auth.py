"""The authenticated caller, whatever issued the token."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, SecretStr


class Role(StrEnum):
    """Roles Java issues; `ROLE_` prefixes are removed before comparing."""

    USER = "USER"
    ADMIN = "ADMIN"


ADMIN_SCOPE = "admin"  # cache keys' data scope of whatever an ADMIN may see
USER_SCOPE = "user"


class User(BaseModel):
    """A caller normalised from a Java JWT (or the DEV bypass)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    username: str
    roles: frozenset[str]
    is_dev: bool = False
    # The caller's own token, forwarded to Java for writes made on the caller's behalf.
    token: SecretStr | None = None

    def has_any_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def scope(self) -> str:
        """The data scope for cache keys: what the caller may see, not who the caller is."""
        return ADMIN_SCOPE if Role.ADMIN in self.roles else USER_SCOPE


class UserPublic(BaseModel):
    """What `/auth/me` shows of the caller."""

    subject: str
    username: str
    roles: list[str]
    dev_mode: bool
