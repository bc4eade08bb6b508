"""The caller as this service sees them."""

from __future__ import annotations

from fastapi import APIRouter

from salesflow.api.deps import CurrentUser
from salesflow.api.envelope import EnvelopeRoute
from salesflow.models.auth import UserPublic

router = APIRouter(prefix="/auth", tags=["auth"], route_class=EnvelopeRoute)


@router.get("/me")
async def read_me(user: CurrentUser) -> UserPublic:
    """Who the token says the caller is, and with which roles (any authenticated user)."""
    return UserPublic(
        subject=user.subject, username=user.username, roles=sorted(user.roles), dev_mode=user.is_dev
    )
