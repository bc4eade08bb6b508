"""Helpers shared by the benchmarks: timing with medians, peak RSS, machine description."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from tests.builders import TODAY, pinned_clock
from tests.servers import UvicornThread

from salesflow.config import Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import DEV_SECRET, StandinState, create_standin
from salesflow.services.ml.strategies import FORECASTERS
from salesflow.services.shop_calendar import ShopCalendar

# The UCI shop's calendar as its manager would set it: England's holidays, closed on Saturdays.
UCI_SHOP_CALENDAR = ShopCalendar.from_settings(
    country="GB", subdivision="ENG", closed_dates=[], closed_weekdays=["sat"]
)


def median_seconds(run: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}


def seed_demo_store(path: Path, *, today: date, products: int, lines: int, days: int = 730) -> int:
    """A demo store at `path` with about `lines` sale lines (the benches' 1M-line shop); lines written."""
    store = EmbeddedStore(path)
    try:
        seeded = store.seed_demo(today=today, n_products=products, days=days, seed=42, target_lines=lines)
    finally:
        store.close()
    return seeded.lines_written


def candidates_option(text: str) -> tuple[tuple[str, ...], ...]:
    """`auto`'s smooth candidates as `theta+ets,theta,arima` (the first is the default)."""
    candidates = tuple(tuple(part.split("+")) for part in text.split(",") if part)
    unknown = {name for candidate in candidates for name in candidate} - set(FORECASTERS)
    if not candidates or unknown:
        raise argparse.ArgumentTypeError(f"unknown models {sorted(unknown)} in {text!r}")
    return candidates


def bench_settings(folder: Path, **overrides: Any) -> Settings:
    """DEV settings on `folder` (its store, exports, outbox), no `.env`, no warm-ups: what benches run on."""
    return Settings(
        _env_file=None,
        dev_mode=True,
        data_dir=folder,
        export_dir=folder / "exports",
        outbox_dir=folder / "outbox",
        forecast_warm_up=False,
        import_warm_up=False,
        **overrides,
    )


SERVICE_PHONE = "0000000000"  # the stand-in's ADMIN: the service account of the benches' processes


@contextmanager
def java_standin(folder: Path, *, products: int, days: int) -> Iterator[tuple[StandinState, str]]:
    """The Java stand-in (a thread of this process) on a demo store seeded in `folder`: its state and URL."""
    store = EmbeddedStore(folder / "java.duckdb")
    try:
        store.seed_demo(today=TODAY, n_products=products, days=days, seed=3)
        state = StandinState(store=store, clock=pinned_clock)
        java = UvicornThread(create_standin(state)).start()
        try:
            yield state, java.url
        finally:
            java.stop()
    finally:
        store.close()


def standin_env(java_url: str, folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a `salesflow serve` or `worker` process on the stand-in at `java_url` (PROD rules,
    no warm-ups, no demand batch, no scheduler), with `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_", "SYSTEM_"))}
    return env | {
        "APP_ENV": "test",
        "DATA_SOURCE": "java",
        "JAVA_API_URL": f"{java_url}/api/v1",
        "JAVA_JWT_SECRET": DEV_SECRET,
        "JAVA_SERVICE_PHONE": SERVICE_PHONE,
        "JAVA_SERVICE_PASSWORD": "password",
        "EXPORT_DIR": str(folder / "exports"),
        "DEMAND_FORECASTS": "false",
        "FORECAST_WARM_UP": "false",
        "SCHEDULER_ENABLED": "false",
        **extra,
    }


def emit(bench: str, figures: dict[str, Any]) -> None:
    """Print one JSON line: the bench's name, the machine, and its figures."""
    line = orjson.dumps({"bench": bench, **machine(), **figures}, option=orjson.OPT_SERIALIZE_NUMPY)
    sys.stdout.write(line.decode() + "\n")
