"""One evaluation of the alert rules on the 500-product, 1M-line demo store, against the computations it is
made of (same run).

    .venv/bin/python -m bench.alert_check [--products 500] [--lines 1000000]

Baseline: the same judgments one request at a time — the stock states of every product (what
`/analytics/stock` computes) and `/ml/anomalies` for the shop and for each product, uncached. Then the first
evaluation (opens every alert, queues the digest) and a second one (nothing changes: the cost of the 15-minute
schedule), with the event loop's worst stall meanwhile (a 5 ms ticker: the rules run in a worker thread).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.builders import TODAY, pinned_clock

from bench.common import bench_settings, emit, peak_rss_mb, seed_demo_store
from salesflow.models.ml import AnomalyRequest, Scope
from salesflow.resources import open_resources


async def stall_while(work: asyncio.Task[object]) -> float:
    """The longest a 5 ms ticker waited beyond its period while `work` ran (ms)."""
    worst = 0.0
    while not work.done():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, (time.perf_counter() - started - 0.005) * 1000)
    return worst


async def measure(folder: Path) -> dict[str, object]:
    settings = bench_settings(folder, alert_recipients=["boss@shop.test"], demand_forecasts=False)
    async with open_resources(settings, clock=pinned_clock) as resources:
        await resources.lines.window(TODAY, TODAY)  # the line cache's cold load is not what is measured
        started = time.perf_counter()
        states = await resources.stock_analytics.product_states(TODAY)
        await resources.anomalies.detect_json(AnomalyRequest(), scope="admin")
        for product_id in states["product_id"]:
            request = AnomalyRequest(scope=Scope.PRODUCT, product_id=int(product_id))
            await resources.anomalies.detect_json(request, scope="admin")
        baseline = time.perf_counter() - started
        figures: dict[str, object] = {
            "baseline_stock_states_and_one_anomaly_request_each_s": round(baseline, 2)
        }
        for name in ("first", "second"):
            started = time.perf_counter()
            check = asyncio.get_running_loop().create_task(resources.alerts.check_now())
            stall = await stall_while(check)
            changes = check.result()
            elapsed = time.perf_counter() - started
            figures[name] = {
                "s": round(elapsed, 2),
                "ratio_to_baseline": round(elapsed / baseline, 2),
                "opened": len(changes.opened),
                "updated": len(changes.updated),
                "digest": changes.digest_mail_id is not None,
                "loop_stall_max_ms": round(stall, 1),
            }
        figures["peak_rss_mb"] = round(peak_rss_mb())
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        written = seed_demo_store(
            Path(folder) / "salesflow.duckdb", today=TODAY, products=args.products, lines=args.lines
        )
        figures = asyncio.run(measure(Path(folder)))
    emit("alert_check", {"products": args.products, "lines": written, **figures})


if __name__ == "__main__":
    main()
