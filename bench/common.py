"""Helpers shared by the benchmarks: timing with medians, peak RSS, machine description."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from salesflow.config import Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.services.ml.strategies import FORECASTERS


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


def emit(bench: str, figures: dict[str, Any]) -> None:
    """Print one JSON line: the bench's name, the machine, and its figures."""
    line = orjson.dumps({"bench": bench, **machine(), **figures}, option=orjson.OPT_SERIALIZE_NUMPY)
    sys.stdout.write(line.decode() + "\n")
