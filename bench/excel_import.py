"""Preview of a 100,000-row .xlsx (UCI Online Retail lines) vs python-calamine merely reading it.

    .venv/bin/python -m bench.excel_import [--rows 100000]

Each measurement runs in a fresh process, so its peak RSS is its own. The preview is the pipeline's read and
parse stages (content typing, extent checks, header detection, every value parsed and validated against the
4,070-product catalogue, valid rows encoded) in the disposable limited process, as `POST /excel/preview` runs
them: the fork, the transfer of file and catalogue and of the results back are counted. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pandas as pd

from bench.common import emit

RETAIL = Path("../shared/data/retail/uci_online_retail.parquet")


def build_file(rows: int, folder: Path) -> tuple[Path, Path]:
    from openpyxl import Workbook

    raw = pd.read_parquet(RETAIL)
    lines = raw[~raw["InvoiceNo"].str.startswith(("C", "A")) & (raw["Quantity"] > 0)].head(rows)
    catalogue = raw.drop_duplicates("StockCode")[["StockCode", "Description", "UnitPrice"]].reset_index(
        drop=True
    )
    products = pd.DataFrame(
        {
            "product_id": range(1, len(catalogue) + 1),
            "sku": catalogue["StockCode"].astype(str),
            "name": catalogue["Description"].astype(str) + " #" + catalogue["StockCode"].astype(str),
            "price": catalogue["UnitPrice"],
            "stock_quantity": 100,
            "low_stock_threshold": 10,
            "category": None,
        }
    )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Sales")
    sheet.append(["Online shop export"])
    sheet.append(["InvoiceNo", "InvoiceDate", "StockCode", "Description", "Quantity", "UnitPrice"])
    for row in lines[
        ["InvoiceNo", "InvoiceDate", "StockCode", "Description", "Quantity", "UnitPrice"]
    ].itertuples(index=False):
        sheet.append([row[0], row[1].to_pydatetime(), str(row[2]), row[3], int(row[4]), float(row[5])])
    path = folder / "sales.xlsx"
    workbook.save(path)
    catalogue_path = folder / "products.parquet"
    products.to_parquet(catalogue_path)
    return path, catalogue_path


def bare_read(path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    workbook = CalamineWorkbook.from_filelike(open(path, "rb"))  # noqa: SIM115
    rows = workbook.get_sheet_by_index(0).to_python()
    queue.put((time.perf_counter() - started, len(rows), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def validate_with_rss(request: Any) -> tuple[Any, int]:
    """read_and_validate in the sandboxed child, with that child's own peak RSS (kB)."""
    from salesflow.services.excel_import.pipeline import read_and_validate

    return read_and_validate(request), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def preview(path: str, catalogue: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import anyio

    from salesflow.config import Settings
    from salesflow.sandbox import Limits, Sandbox
    from salesflow.services.excel_import.pipeline import ValidationRequest, read_and_validate

    settings = Settings(_env_file=None, dev_mode=True)
    products = pd.read_parquet(catalogue)
    content = Path(path).read_bytes()
    sandbox = Sandbox(preload=[read_and_validate.__module__, __name__])
    limits = Limits(
        memory_bytes=settings.imports.parser_memory_mb * 2**20,
        cpu_seconds=settings.imports.parser_cpu_seconds,
        wall_seconds=settings.imports.parser_wall_seconds,
    )
    request = ValidationRequest(content, products, None, None, None, None, settings.imports.max_rows)
    anyio.run(sandbox.run, limits, divmod, 1, 1)  # the server starts its forkserver at start-up
    started = time.perf_counter()
    validated, child_rss_kb = anyio.run(sandbox.run, limits, validate_with_rss, request)
    elapsed = time.perf_counter() - started
    parsed = validated.parsed
    queue.put((elapsed, (parsed.total_rows, validated.valid_count, len(parsed.errors)), child_rss_kb))


def measure(target: Callable[..., None], *args: object) -> tuple[float, object, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    elapsed, result, rss_kb = queue.get(timeout=600)
    process.join()
    return elapsed, result, rss_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path, catalogue = build_file(args.rows, Path(folder))
        size_mb = path.stat().st_size / 2**20
        bare_s, bare_rows, bare_rss = measure(bare_read, str(path))
        ours_s, counts, ours_rss = measure(preview, str(path), str(catalogue))
    total, valid, errors = cast(tuple[int, int, int], counts)
    emit(
        "excel_import_preview",
        {
            "rows": total,
            "valid_rows": valid,
            "errors": errors,
            "file_mb": round(size_mb, 1),
            "preview_s": round(ours_s, 2),
            "calamine_read_s": round(bare_s, 2),
            "ratio": round(ours_s / bare_s, 2),
            "preview_peak_rss_mb": round(ours_rss),
            "calamine_peak_rss_mb": round(bare_rss),
            "sheet_rows_read": bare_rows,
        },
    )


if __name__ == "__main__":
    main()
