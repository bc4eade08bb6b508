"""Combined reports (PDF and Excel) on the 500-product, 1M-line demo store: time and size, against the
analytics and ML computations they are made of (same run).

    .venv/bin/python -m bench.reports [--products 500] [--lines 1000000]

The baseline is the gather stage alone (the same service calls `/analytics/sales`, `/analytics/stock`,
`/ml/forecast` and `/ml/anomalies` make, uncached); each report is then run as a job end to end (claim,
gather from warm caches, render in a worker thread, atomic write, complete). Prints one JSON line per format.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import anyio
from tests.builders import TODAY, pinned_clock

from bench.common import emit, seed_demo_store
from salesflow.config import Settings
from salesflow.integration.jwt import DEV_USER
from salesflow.models.analytics import Period, SalesQuery
from salesflow.models.reports import ReportFormat, ReportRequest, ReportType
from salesflow.resources import open_resources


async def measure(folder: Path) -> None:
    settings = Settings(
        _env_file=None,
        dev_mode=True,
        data_dir=folder,
        export_dir=folder / "exports",
        demand_forecasts=False,
        forecast_warm_up=False,
    )
    async with open_resources(settings, clock=pinned_clock) as resources:
        started = time.perf_counter()
        await resources.reports.gatherer.gather(
            ReportType.COMBINED,
            SalesQuery(period=Period.MONTHLY),
            scope="admin",
            generated_at=pinned_clock(),
        )
        gather_s = time.perf_counter() - started
        for report_format in (ReportFormat.PDF, ReportFormat.EXCEL):
            started = time.perf_counter()
            job = await resources.reports.submit(
                ReportRequest(report_type=ReportType.COMBINED, format=report_format, period=Period.MONTHLY),
                user=DEV_USER,
            )
            with anyio.fail_after(600):
                done = await resources.reports.wait(job.id)
            elapsed = time.perf_counter() - started
            path = resources.reports.store.path(job.id, report_format)
            emit(
                "reports_combined",
                {
                    "format": report_format.value,
                    "status": done.status,
                    "job_s": round(elapsed, 2),
                    "file_kb": round(path.stat().st_size / 1024, 1),
                    "baseline_gather_uncached_s": round(gather_s, 2),
                    "ratio_job_to_gather": round(elapsed / gather_s, 2),
                },
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        seed_demo_store(
            Path(folder) / "salesflow.duckdb", today=TODAY, products=args.products, lines=args.lines
        )
        asyncio.run(measure(Path(folder)))


if __name__ == "__main__":
    main()
