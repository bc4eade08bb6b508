"""Forecasting speed: every product of a 500-product, 2-year store; one product over HTTP; the cold start.

    .venv/bin/python -m bench.forecast_speed [--products 500] [--repeat 15]

1. batch: the day's pooled model, then each product's day forecast (`auto`, 80/95% intervals,
   `FORECAST_DAYS` days, its backtest, averaged with the pooled model) in a 2-process pool, as the day's batch
   makes it; baselines in the same run (the models compiled in both workers first): `auto` alone, without
   the pooled model, and seasonal naive for the same series.
   Time and peak RSS (this process and the pool's workers).
2. HTTP, uncached: `salesflow serve` on the same store without the batch; the time from process start to the
   first answered forecast, then the median latency of uncached PRODUCT forecasts, against `/health`.
3. HTTP, from the batch: the service with the day's batch on (2 processes); once the batch has landed (its
   `/metrics` show `salesflow_demand_batch_completed_timestamp_seconds`), the median latency of PRODUCT
   forecasts of products not asked for before, against `/health`. Prints one JSON line per phase.
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
from tests.servers import sample, wait_until

from bench.analytics import Service
from bench.common import emit
from salesflow.data.sale_lines import business_days
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.metrics import DEMAND_BATCH_COMPLETED_METRIC
from salesflow.models.ml import DEFAULT_LEVELS, Bucket, ProductInfo
from salesflow.services.ml.forecasting import FORECAST_DAYS, fit_pooled, forecast_many
from salesflow.services.ml.pooled import PooledForecaster
from salesflow.services.ml.series import build_series
from salesflow.services.ml.strategies import SeasonalNaive


def naive_one(job: tuple[np.ndarray, int]) -> np.ndarray:
    y, h = job
    return SeasonalNaive(season_length=7).fit(y).predict(h)["mean"] if len(y) else np.zeros(h)


def batch_phase(store_path: Path, n_products: int) -> dict[str, float]:
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
        list(pool.map(naive_one, [(series[0], FORECAST_DAYS)]))  # start the workers outside the timings
        started = time.perf_counter()
        list(pool.map(naive_one, [(y, FORECAST_DAYS) for y in series], chunksize=16))
        naive_s = time.perf_counter() - started
        forecast_many(series[:16], first_day=today, level=DEFAULT_LEVELS, executor=pool)  # compile: not timed
        started = time.perf_counter()
        forecast_many(series, first_day=today, level=DEFAULT_LEVELS, executor=pool)
        alone_s = time.perf_counter() - started
        started = time.perf_counter()
        pooled = fit_pooled(series, today, frozenset())
        pooled_s = time.perf_counter() - started
        forecasts = forecast_many(series, first_day=today, level=DEFAULT_LEVELS, executor=pool, pooled=pooled)
        auto_s = time.perf_counter() - started
    assert len(forecasts) == len(series) and all(min(f.mean) >= 0 for f in forecasts)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "products": len(series),
        "days": FORECAST_DAYS,
        "auto_with_intervals_s": round(auto_s, 1),
        "of_which_pooled_fit_s": round(pooled_s, 1),
        "auto_alone_s": round(alone_s, 1),
        "pooled_products": sum(f.model.name.endswith(PooledForecaster.name) for f in forecasts),
        "per_product_ms": round(auto_s / len(series) * 1000, 1),
        "seasonal_naive_s": round(naive_s, 2),
        "peak_rss_mb_main": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_mb_worker": round(children),
    }


def http_phase(store_path: Path, work: Path, repeat: int, *, from_batch: bool) -> dict[str, float]:
    data_dir = work / ("batch" if from_batch else "uncached")
    data_dir.mkdir()
    (data_dir / "salesflow.duckdb").write_bytes(store_path.read_bytes())
    env = {"DEV_MODE": "true", "DATA_DIR": str(data_dir), "EXPORT_DIR": str(work / "exports")}
    if from_batch:
        env |= {"DEMAND_FORECASTS": "true", "DEMAND_FORECAST_WORKERS": "2"}
    started = time.perf_counter()
    service = Service(env, work)
    figures: dict[str, float] = {}
    try:
        with httpx.Client(base_url=service.url, timeout=600, trust_env=False) as client:
            if from_batch:
                wait_until(lambda: _batch_landed(client), timeout=900, what="the day's batch")
                figures["batch_landed_after_start_s"] = round(time.perf_counter() - started, 1)
            else:
                client.post("/ml/forecast", json=_product(1)).raise_for_status()
                figures["start_to_first_forecast_s"] = round(time.perf_counter() - started, 2)
            samples, health = [], []
            for product_id in range(2, repeat + 2):
                t0 = time.perf_counter()
                client.post("/ml/forecast", json=_product(product_id)).raise_for_status()
                samples.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                client.get("/health").raise_for_status()
                health.append(time.perf_counter() - t0)
    finally:
        service.stop()
    return figures | {
        "product_forecast_median_ms": round(statistics.median(samples) * 1000, 1),
        "health_median_ms": round(statistics.median(health) * 1000, 2),
    }


def _product(product_id: int) -> dict[str, object]:
    return {"scope": "PRODUCT", "product_id": product_id, "forecast_days": 28}


def _batch_landed(client: httpx.Client) -> bool:
    """The service says it completed the day's batch (its stock figures use it from the next day on)."""
    metrics = client.get(client.base_url.copy_with(path="/metrics")).raise_for_status().text
    return sample(metrics, DEMAND_BATCH_COMPLETED_METRIC) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
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
            {"lines": seeded.lines_written, **batch_phase(store_path, args.products)},
        )
        emit("forecast_http_uncached", http_phase(store_path, work, args.repeat, from_batch=False))
        emit("forecast_http_from_batch", http_phase(store_path, work, args.repeat, from_batch=True))


if __name__ == "__main__":
    main()
