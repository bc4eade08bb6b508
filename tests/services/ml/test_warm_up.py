"""Warm-ups in the background at start: the forecasting models are compiled (FORECAST_WARM_UP) and the upload
parsers' forkserver started (IMPORT_WARM_UP); the suite turns both off elsewhere (seconds of CPU per app)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from salesflow import background
from salesflow.config import Settings
from tests.servers import dev_server_process, wait_until


def test_the_app_warms_the_models_up_in_the_background(
    serve: Callable[..., httpx.Client],
    make_settings: Callable[..., Settings],
    store_file,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=background.logger.name)
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None, forecast_warm_up=True))
    assert api.get("/health").status_code == 200  # the start does not wait for the warm-up
    wait_until(
        lambda: any(r.getMessage() == "forecast models warmed up" for r in caplog.records),
        timeout=120,
        what="the warm-up",
    )
    assert api.post("/ml/forecast", json={"scope": "GLOBAL", "forecast_days": 7}).status_code == 200


def test_a_served_app_starts_the_upload_parsers_before_the_first_upload(tmp_path: Path) -> None:
    """`salesflow serve` with IMPORT_WARM_UP: the forkserver that forks each upload's parser is running (its
    modules imported) before any upload arrives."""
    with dev_server_process(tmp_path, IMPORT_WARM_UP="true") as (server, _):
        wait_until(
            lambda: _forkserver_children(server.pid), timeout=120, what="the upload parsers' forkserver"
        )


def _forkserver_children(pid: int) -> bool:
    """Whether a child of any thread of `pid` (the forkserver is started from a worker thread) is one."""
    children = [
        c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()
    ]
    for child in children:
        with contextlib.suppress(OSError):
            if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
    return False
