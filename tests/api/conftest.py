"""Fixtures of the route tests."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from salesflow.config import Settings


@pytest.fixture
def dev_api(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], store_file
) -> httpx.Client:
    """The app in DEV mode on a copy of the small demo store."""
    return serve(make_settings(dev_mode=True, java_jwt_secret=None))
