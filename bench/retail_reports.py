"""The real shop's reports (UCI Online Retail, ~3,700 products): pages of the stock and combined PDFs, with
the lists capped for print, against the same reports with every row (the baseline, same run).

    .venv/bin/python -m bench.retail_reports [--out DIR]

`--out` keeps the files (to look at them: `pdftoppm -png -r 60 DIR/stock.pdf DIR/stock`). Prints one JSON
line: pages and seconds of each report, capped and uncapped.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path

from tests.builders import RETAIL_LAST_DAY, load_retail_store, read_retail_lines

from bench.common import bench_settings, emit
from salesflow.models.analytics import Period, SalesQuery
from salesflow.models.reports import ReportType
from salesflow.resources import open_resources
from salesflow.services.reports import pdf
from salesflow.services.reports.xlsx import render_xlsx

REPORTS = {
    "stock": (ReportType.STOCK, SalesQuery(period=Period.WEEKLY)),
    "combined": (ReportType.COMBINED, SalesQuery(period=Period.QUARTERLY)),
    "daily": (ReportType.SALES, SalesQuery(start_date=RETAIL_LAST_DAY, end_date=RETAIL_LAST_DAY)),
}


def pages(document: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", document))


async def measure(folder: Path, out: Path) -> dict[str, object]:
    load_retail_store(folder / "salesflow.duckdb", read_retail_lines())
    settings = bench_settings(
        folder, shop_country="GB", demand_forecasts=False, analytics_max_window_days=400
    )
    now = datetime.combine(RETAIL_LAST_DAY, clock_time(20, 0), tzinfo=UTC)
    async with open_resources(settings, clock=lambda: now) as resources:
        figures: dict[str, object] = {}
        gatherer = resources.reports.gatherer
        for name, (report_type, query) in REPORTS.items():
            content = await gatherer.gather(report_type, query, scope="admin", generated_at=now)
            capped_at = pdf.PDF_MAX_ROWS
            started = time.perf_counter()
            capped = pdf.render_pdf(content)
            seconds = time.perf_counter() - started
            pdf.PDF_MAX_ROWS = 10**9  # the baseline: every row in the PDF
            started = time.perf_counter()
            every_row = pdf.render_pdf(content)
            baseline = time.perf_counter() - started
            pdf.PDF_MAX_ROWS = capped_at
            (out / f"{name}.pdf").write_bytes(capped)
            (out / f"{name}.xlsx").write_bytes(render_xlsx(content))
            figures[name] = {
                "pages": pages(capped),
                "s": round(seconds, 2),
                "baseline_every_row_pages": pages(every_row),
                "baseline_s": round(baseline, 2),
            }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = args.out or Path(folder) / "out"
        out.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(measure(Path(folder), out))
    emit("retail_reports", figures)


if __name__ == "__main__":
    main()
