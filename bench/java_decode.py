"""Decoding a 1M-line Java `/sales/history` reply into the port's sale-line columns.

The JSON is produced by the Java stand-in from a demo store. Compared in the same run: our decoder
(msgspec structs → columns), `orjson.loads` + a comprehension, and the naive `json.loads` +
`pandas.json_normalize`. Prints one JSON line.

    .venv/bin/python -m bench.java_decode [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date, datetime
from pathlib import Path

import orjson
import pandas as pd

from bench.common import emit, median_seconds
from salesflow.data.sources.base import SALE_LINE_COLUMNS, conform
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.data.sources.java_codec import decode_sale_lines
from salesflow.integration.java_demo import _history_json


def naive(raw: bytes) -> pd.DataFrame:
    """What the earlier backend did: json.loads, then json_normalize on Python dicts."""
    frame = pd.json_normalize(json.loads(raw), record_path="items", meta=["id", "saleDate", "totalAmount"])
    frame = frame.rename(
        columns={
            "id": "sale_id",
            "saleDate": "sold_at",
            "productId": "product_id",
            "productName": "name",
            "unitPrice": "unit_price",
            "totalAmount": "sale_total",
        }
    )
    frame["sold_at"] = pd.to_datetime(frame["sold_at"], format="ISO8601")
    return conform(frame, SALE_LINE_COLUMNS)


def orjson_rows(raw: bytes) -> pd.DataFrame:
    """orjson into dicts, flattened by one comprehension."""
    rows = [
        (
            s["id"],
            s["saleDate"],
            i["productId"],
            i["sku"],
            i["productName"],
            i["quantity"],
            i["unitPrice"],
            i["subtotal"],
            s["totalAmount"],
        )
        for s in orjson.loads(raw)
        for i in s["items"]
    ]
    frame = pd.DataFrame(rows, columns=list(SALE_LINE_COLUMNS))
    frame["sold_at"] = pd.to_datetime(frame["sold_at"], format="ISO8601")
    return conform(frame, SALE_LINE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder) / "bench.duckdb")
        store.seed_demo(today=date.today(), n_products=500, days=730, seed=42, target_lines=args.lines)
        raw = _history_json(store, datetime(2000, 1, 1), datetime(9999, 1, 1))
        store.close()
    ours, base = decode_sale_lines(raw), naive(raw)
    key = ["sale_id", "product_id", "quantity", "unit_price"]
    pd.testing.assert_frame_equal(
        ours.sort_values(key).reset_index(drop=True), base.sort_values(key).reset_index(drop=True)
    )
    ours_s = median_seconds(lambda: decode_sale_lines(raw), repeat=args.repeat)
    orjson_s = median_seconds(lambda: orjson_rows(raw), repeat=args.repeat)
    naive_s = median_seconds(lambda: naive(raw), repeat=args.repeat)
    emit(
        "java_history_decode",
        {
            "lines": len(ours),
            "json_mb": round(len(raw) / 2**20, 1),
            "msgspec_columns_s": round(ours_s, 3),
            "orjson_comprehension_s": round(orjson_s, 3),
            "json_loads_json_normalize_s": round(naive_s, 3),
            "naive_over_ours": round(naive_s / ours_s, 1),
        },
    )


if __name__ == "__main__":
    main()
