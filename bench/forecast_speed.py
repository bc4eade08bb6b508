"""Forecasting speed: every product of a 500-product, 2-year store; one product over HTTP; the cold start.

    .venv/bin/python -m bench.forecast_speed [--products 500] [--horizon 28] [--repeat 15]

1. batch: `auto` with 80/95% intervals for every product's daily series, in a 2-process pool; baseline in the
   same run: seasonal naive for the same series. Time and peak RSS (this process and the pool's workers).
2. HTTP: `salesflow serve` on the same store; the time from process start to the first answered forecast,
   that first forecast's latency, then the median latency of uncached PRODUCT forecasts after the warm-up,
   against `/health` in the same run. Prints one JSON line per phase.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from bench.analytics import Service
from bench.common import emit
from salesflow.data.sale_lines import business_days
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.models.ml import Bucket, ProductInfo
from salesflow.services.ml.forecasting import forecast_many
from salesflow.services.ml.series import build_series
from salesflow.services.ml.strategies import SeasonalNaive


def naive_one(job: tuple[np.ndarray, int]) -> np.ndarray:
    y, h = job
    return SeasonalNaive(season_length=7).fit(y).predict(h)["mean"] if len(y) else np.zeros(h)


def batch_phase(store_path: Path, n_products: int, h: int) -> dict[str, float]:
    from zoneinfo import ZoneInfo

    store = EmbeddedStore(store_path)
    today = date.today()
    lines = store.sale_lines(datetime(2000, 1, 1), datetime(9999, 1, 1))
    products = store.products()
    store.close()
    lines = lines.assign(day=business_days(lines["sold_at"], ZoneInfo("UTC"), ZoneInfo("UTC")))
    by_product = dict(tuple(lines.groupby("product_id")))
    first = today - timedelta(days=400)
    series = []
    for product_id, sku, name in zip(
        products["product_id"].tolist(), products["sku"].tolist(), products["name"].tolist(), strict=True
    ):
        info = ProductInfo(id=product_id, sku=sku, name=name)
        subset = by_product.get(product_id, lines.iloc[0:0])
        series.append(
            build_series(
                subset, product=info, bucket=Bucket.DAILY, metric="quantity", today=today, first_day=first
            ).values
        )
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(naive_one, [(series[0], h)]))  # start the workers outside the timings
        started = time.perf_counter()
        list(pool.map(naive_one, [(y, h) for y in series], chunksize=16))
        naive_s = time.perf_counter() - started
        started = time.perf_counter()
        forecasts = forecast_many(series, h=h, season_length=7, level=(80, 95), executor=pool)
        auto_s = time.perf_counter() - started
    assert len(forecasts) == len(series) and all((f["mean"] >= 0).all() for f in forecasts)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "products": len(series),
        "horizon": h,
        "auto_with_intervals_s": round(auto_s, 1),
        "per_product_ms": round(auto_s / len(series) * 1000, 1),
        "seasonal_naive_s": round(naive_s, 2),
        "peak_rss_mb_main": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_mb_worker": round(children),
    }


def http_phase(store_path: Path, work: Path, repeat: int) -> dict[str, float]:
    data_dir = work / "http"
    data_dir.mkdir()
    (data_dir / "salesflow.duckdb").write_bytes(store_path.read_bytes())
    started = time.perf_counter()
    service = Service(
        {"DEV_MODE": "true", "DATA_DIR": str(data_dir), "EXPORT_DIR": str(work / "exports")}, work
    )
    try:
        with httpx.Client(base_url=service.url, timeout=300, trust_env=False) as client:
            first_started = time.perf_counter()
            client.post(
                "/ml/forecast", json={"scope": "PRODUCT", "product_id": 1, "forecast_days": 28}
            ).raise_for_status()
            first_latency = time.perf_counter() - first_started
            to_first = time.perf_counter() - started
            samples, health = [], []
            for product_id in range(2, repeat + 2):
                t0 = time.perf_counter()
                client.post(
                    "/ml/forecast", json={"scope": "PRODUCT", "product_id": product_id, "forecast_days": 28}
                ).raise_for_status()
                samples.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                client.get("/health").raise_for_status()
                health.append(time.perf_counter() - t0)
    finally:
        service.stop()
    return {
        "start_to_first_forecast_s": round(to_first, 2),
        "first_forecast_latency_s": round(first_latency, 2),
        "product_forecast_median_ms": round(statistics.median(samples) * 1000, 1),
        "health_median_ms": round(statistics.median(health) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        store_path = work / "store.duckdb"
        store = EmbeddedStore(store_path)
        seeded = store.seed_demo(today=date.today(), n_products=args.products, days=730, seed=42)
        store.close()
        emit(
            "forecast_batch",
            {"lines": seeded.lines_written, **batch_phase(store_path, args.products, args.horizon)},
        )
        emit("forecast_http", http_phase(store_path, work, args.repeat))


if __name__ == "__main__":
    main()
