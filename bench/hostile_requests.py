"""What one user's hostile requests cost everyone else (issue 19), against a real server process.

    .venv/bin/python -m bench.hostile_requests [--rows 200000]

Starts `salesflow serve` (DEV mode, demo data in a temporary folder) on a free loopback port and sends, in
turn: a CSV whose every row breaks three rules, a forecast whose `level` holds 340,000 numbers, a burst of
15 report jobs from one user, and 1,100 connections that send half their headers and stall (closed by the
server once `HTTP_HEADER_TIMEOUT_SECONDS`, 10, pass). While each runs another thread polls `/health` every
20 ms. For each: status, time, answer size, state-database growth, server RSS, the slowest `/health` answer
and the event loop's worst lag (the smallest `salesflow_event_loop_lag_seconds` bucket holding every tick of
the row). The baseline is `/health` polled the same way with nothing in flight. Prints one JSON line per row
and the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests import hostile
from tests.servers import answers, free_port, wait_until

from bench.common import emit
from bench.hostile_uploads import rss_mb, while_polling
from salesflow.cli import raise_descriptor_limit

LAG_BUCKETS = "salesflow_event_loop_lag_seconds_bucket"
LEVELS = [80, 95] * 170_000
REPORT_BURST = 15
SLOW_CONNECTIONS = 1_100
STALLED_HEADERS = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
GIVE_UP_SECONDS = 120.0


def stalled_connections(port: int) -> dict[str, Any]:
    """Opens `SLOW_CONNECTIONS` that never finish their headers; returns once the server closed them all (or
    `GIVE_UP_SECONDS` passed): how many it closed and when the last went."""
    selector = selectors.DefaultSelector()
    started = time.perf_counter()
    for _ in range(SLOW_CONNECTIONS):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(STALLED_HEADERS)
        selector.register(connection, selectors.EVENT_READ, data=connection)
    closed, last = 0, 0.0
    while selector.get_map() and time.perf_counter() - started < GIVE_UP_SECONDS:
        for key, _ in selector.select(timeout=1.0):
            connection = key.data
            with contextlib.suppress(ConnectionResetError):
                if connection.recv(1024):
                    continue  # an answer: not a stalled request after all
            selector.unregister(connection)
            connection.close()
            closed, last = closed + 1, time.perf_counter() - started
    for key in list(selector.get_map().values()):
        key.data.close()
    return {
        "connections": SLOW_CONNECTIONS,
        "closed_by_server": closed,
        "last_closed_after_s": round(last, 1),
    }


def lag_buckets(api: httpx.Client) -> dict[float, float]:
    text = api.get(api.base_url.copy_with(path="/metrics")).text
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == LAG_BUCKETS
    }


def worst_lag_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The upper bound of the smallest bucket holding every tick observed between the two scrapes."""
    ticks = after[float("inf")] - before.get(float("inf"), 0.0)
    for bound in sorted(after):
        if after[bound] - before.get(bound, 0.0) >= ticks:
            return bound * 1000
    return None


def state_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("state.sqlite3*"))


def measure(
    name: str, api: httpx.Client, health: httpx.Client, server: int, folder: Path, action: Callable[[], Any]
) -> None:
    lag_before, db_before, rss_before = lag_buckets(api), state_bytes(folder), rss_mb(server)
    outcome, elapsed, samples = while_polling(health, action)
    lag_after = lag_buckets(api)
    emit(
        "hostile_request",
        {
            "row": name,
            **outcome,
            "seconds": round(elapsed, 2),
            "state_db_growth_kb": round((state_bytes(folder) - db_before) / 1024, 1),
            "rss_before_mb": rss_before["VmRSS"],
            "rss_after_mb": rss_mb(server)["VmRSS"],
            "health_max_ms": round(max(samples, default=0) * 1000, 1),
            "health_median_ms": round(statistics.median(samples or [0]) * 1000, 1),
            "event_loop_lag_max_ms_at_most": worst_lag_ms(lag_before, lag_after),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    rows = parser.parse_args().rows
    raise_descriptor_limit()  # this process holds the stalled connections
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "DEV_MODE": "true",
            "PORT": str(port),
            "DATA_DIR": tmp,
            "EXPORT_DIR": tmp,
            "DEMAND_FORECASTS": "false",
            "RATE_LIMIT_EXPENSIVE": "0",
        }
        command = [sys.executable, "-m", "salesflow.cli", "serve"]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            with (
                httpx.Client(base_url=base, timeout=600, trust_env=False) as api,
                httpx.Client(base_url=base, timeout=30, trust_env=False) as health,
            ):
                wait_until(lambda: answers(api), timeout=120, what="the server")
                api.post("/ml/forecast", json={"scope": "GLOBAL"})  # models compiled before anything is timed
                _, _, idle = while_polling(health, lambda: time.sleep(3))
                content = hostile.rows_breaking_every_rule(rows)

                def bad_rows() -> dict[str, Any]:
                    answer = api.post("/excel/preview", files={"file": ("bad.csv", content, "text/csv")})
                    listing = api.get("/excel/imports")
                    return {
                        "status": answer.status_code,
                        "upload_bytes": len(content),
                        "answer_bytes": len(answer.content),
                        "listing_bytes": len(listing.content),
                    }

                def huge_levels() -> dict[str, Any]:
                    answer = api.post("/ml/forecast", json={"scope": "GLOBAL", "level": LEVELS})
                    return {"status": answer.status_code, "answer_bytes": len(answer.content)}

                def report_burst() -> dict[str, Any]:
                    body = {"report_type": "combined", "format": "pdf"}
                    statuses = [api.post("/reports/jobs", json=body).status_code for _ in range(REPORT_BURST)]
                    return {"status": {str(s): statuses.count(s) for s in sorted(set(statuses))}}

                pid = server.pid
                measure(f"{rows:,} rows breaking 3 rules each", api, health, pid, folder, bad_rows)
                measure(f"level list of {len(LEVELS):,} numbers", api, health, pid, folder, huge_levels)
                measure(f"{REPORT_BURST} report jobs from one user", api, health, pid, folder, report_burst)
                measure(
                    f"{SLOW_CONNECTIONS:,} connections stalled in their headers",
                    api,
                    health,
                    pid,
                    folder,
                    lambda: stalled_connections(port),
                )
                emit(
                    "hostile_requests_baseline",
                    {
                        "health_idle_max_ms": round(max(idle) * 1000, 1),
                        "health_idle_median_ms": round(statistics.median(idle) * 1000, 1),
                        "server_alive": server.poll() is None,
                    },
                )
        finally:
            server.terminate()
            server.wait(60)


if __name__ == "__main__":
    main()
