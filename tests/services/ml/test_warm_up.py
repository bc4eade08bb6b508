"""Warm-ups in the background at start: the forecasting models are compiled (FORECAST_WARM_UP) and the upload
parsers' forkserver started (IMPORT_WARM_UP); the suite turns both off elsewhere (seconds of CPU per app)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from salesflow.config import Settings
from tests.servers import answers, free_port, wait_until


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


def test_a_served_app_starts_the_upload_parsers_before_the_first_upload(tmp_path: Path) -> None:
    """`salesflow serve` with IMPORT_WARM_UP: the forkserver that forks each upload's parser is running (its
    modules imported) before any upload arrives."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_"))},
        "DEV_MODE": "true",
        "DEV_JAVA_PORT": "0",
        "PORT": str(port),
        "DATA_DIR": str(tmp_path / "data"),
        "EXPORT_DIR": str(tmp_path / "exports"),
        "FORECAST_WARM_UP": "false",
        "DEMAND_FORECASTS": "false",
        "SCHEDULER_ENABLED": "false",
        "IMPORT_WARM_UP": "true",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "salesflow.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", trust_env=False) as api:
            wait_until(lambda: answers(api), timeout=50, what="the app")
            wait_until(
                lambda: _forkserver_children(server.pid), timeout=120, what="the upload parsers' forkserver"
            )
    finally:
        server.terminate()
        server.wait(30)


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
