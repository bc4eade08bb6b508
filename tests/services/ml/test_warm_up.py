"""The forecasting models are compiled in the background at start when FORECAST_WARM_UP is on (the suite
turns it off elsewhere: 1-2 s of CPU per app start)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from salesflow.config import Settings
from tests.servers import wait_until


def test_the_app_warms_the_models_up_in_the_background(
    serve: Callable[..., httpx.Client],
    make_settings: Callable[..., Settings],
    store_file,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="salesflow.api.main")
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None, forecast_warm_up=True))
    assert api.get("/health").status_code == 200  # the start does not wait for the warm-up
    wait_until(
        lambda: any(r.getMessage() == "forecast models warmed up" for r in caplog.records),
        timeout=120,
        what="the warm-up",
    )
    assert api.post("/ml/forecast", json={"scope": "GLOBAL", "forecast_days": 7}).status_code == 200
