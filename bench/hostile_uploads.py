"""Each hostile upload of tests/hostile.py against a real server process: status, time, server RSS, /health.

    .venv/bin/python -m bench.hostile_uploads

Starts `salesflow serve` (DEV mode, demo data in a temporary folder, default parser limits) on a free loopback
port, then uploads every file of the corpus in turn while another thread polls `/health` every 20 ms. For
each: the status, the request's time, the slowest and the median `/health` answer meanwhile, and the server's
RSS before and after and its peak (VmHWM) so far. The baseline is `/health` polled the same way with no upload
in flight. Prints one JSON line per file and a summary line.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests import hostile
from tests.servers import answers, free_port, wait_until

from bench.common import emit


def rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def poll_health(client: httpx.Client, done: threading.Event, samples: list[float]) -> None:
    while not done.is_set():
        started = time.perf_counter()
        client.get("/health")
        samples.append(time.perf_counter() - started)
        done.wait(0.02)


def while_polling(client: httpx.Client, action: Any) -> tuple[Any, float, list[float]]:
    done, samples = threading.Event(), []  # type: ignore[var-annotated]
    poller = threading.Thread(target=poll_health, args=(client, done, samples))
    poller.start()
    started = time.perf_counter()
    try:
        result = action()
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        poller.join()
    return result, elapsed, samples


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "DEV_MODE": "true",
            "PORT": str(port),
            "DATA_DIR": folder,
            "EXPORT_DIR": folder,
            "DEMAND_FORECASTS": "false",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "salesflow.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            with (
                httpx.Client(base_url=base, timeout=300, trust_env=False) as api,
                httpx.Client(base_url=base, timeout=30, trust_env=False) as health,
            ):
                wait_until(lambda: answers(api), timeout=120, what="the server")
                top = api.get("/analytics/sales", params={"period": "quarterly"}).json()
                sku = top["kpis"]["top_products"][0]["sku"]
                api.post("/excel/preview", files={"file": ("warm.csv", hostile.bare_cr(sku), "text/csv")})
                _, _, idle = while_polling(health, lambda: time.sleep(3))
                for case in hostile.corpus(sku):
                    before = rss_mb(server.pid)
                    response, elapsed, samples = while_polling(
                        health,
                        lambda case=case: api.post(
                            "/excel/preview",
                            files={"file": ("upload", case.content, "application/octet-stream")},
                        ),
                    )
                    after = rss_mb(server.pid)
                    emit(
                        "hostile_upload",
                        {
                            "file": case.name,
                            "bytes": len(case.content),
                            "status": response.status_code,
                            "expected_status": case.status,
                            "seconds": round(elapsed, 3),
                            "health_max_ms": round(max(samples, default=0) * 1000, 1),
                            "health_median_ms": round(statistics.median(samples or [0]) * 1000, 1),
                            "health_polls": len(samples),
                            "rss_before_mb": before["VmRSS"],
                            "rss_after_mb": after["VmRSS"],
                            "peak_rss_so_far_mb": after["VmHWM"],
                        },
                    )
                emit(
                    "hostile_uploads_baseline",
                    {
                        "health_idle_max_ms": round(max(idle) * 1000, 1),
                        "health_idle_median_ms": round(statistics.median(idle) * 1000, 1),
                        "server_alive": server.poll() is None,
                        "final_rss_mb": rss_mb(server.pid)["VmRSS"],
                    },
                )
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
