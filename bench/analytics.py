"""Analytics at a million sale lines: embedded and PROD paths, cached throughput, server memory.

    .venv/bin/python -m bench.analytics [--lines 1000000] [--products 500] [--repeat 15]

The service runs as its own process (`salesflow serve`), so its peak RSS is measured alone. Phases:
1. embedded (DEV): uncached `/analytics/sales?period=quarterly` and `/analytics/stock` over HTTP (the result
   cache is invalidated before each timed request) vs DuckDB computing the same KPIs from the same rows
   already in memory;
2. PROD through the Java stand-in serving the same lines: the cold first request, then the steady state after
   1,000 new sales (each request refreshes incrementally), vs the naive approach (full `/sales/history`
   download + `json.loads` + `json_normalize` + pandas on every request);
3. cached requests per second vs the service's own `/health`, one worker;
4. the server's peak RSS in phases 1 and 2.
Prints one JSON line per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pandas as pd
from tests.servers import UvicornThread, free_port, wait_until

from bench.common import emit, median_seconds
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import DEV_SECRET, StandinState, create_standin

ROOT = Path(__file__).resolve().parents[1]
FAR_FUTURE = datetime(9999, 1, 1)


class Service:
    """`salesflow serve` in a subprocess."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        # The daily forecast batch would compete for the CPU with what is measured: it has its own bench.
        full_env = {
            **os.environ,
            "DEMAND_FORECASTS": "false",
            **env,
            "LOG_LEVEL": "WARNING",
            "PORT": str(self.port),
        }
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/salesflow"), "serve"],
            env=full_env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._up, timeout=120, what="service start")

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def timed_uncached(client: httpx.Client, path: str, repeat: int) -> float:
    """Median latency of `path` with the result cache invalidated before each request."""

    def one() -> None:
        client.post("/admin/cache/invalidate", json={"pipeline": "analytics"}).raise_for_status()
        started = time.perf_counter()
        client.get(path).raise_for_status()
        samples.append(time.perf_counter() - started)

    samples: list[float] = []
    for _ in range(repeat + 1):
        one()
    return float(pd.Series(samples[1:]).median())


# DuckDB baseline: the same KPIs computed by SQL on frames already in memory.

SALES_SQL = """
WITH w AS (SELECT * FROM lines WHERE day BETWEEN $first AND $last),
p AS (SELECT * FROM lines WHERE day BETWEEN $prev_first AND $prev_last)
SELECT
  (SELECT sum(subtotal) FROM w), (SELECT sum(quantity) FROM w), (SELECT count(DISTINCT sale_id) FROM w),
  (SELECT list(product_id) FROM
       (SELECT product_id, sum(subtotal) r FROM w GROUP BY 1 ORDER BY r DESC LIMIT 5)),
  (SELECT list(r) FROM (SELECT d.day, coalesce(sum(w.subtotal), 0) r, count(DISTINCT w.sale_id) t
       FROM (SELECT unnest(range($first::TIMESTAMP, $last::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY))
             AS day) d
       LEFT JOIN w ON w.day = d.day GROUP BY d.day ORDER BY d.day)),
  (SELECT list(r) FROM (SELECT c.category, sum(w.subtotal) r FROM w JOIN products c USING (product_id)
       GROUP BY 1 ORDER BY r DESC)),
  (SELECT sum(subtotal) FROM p), (SELECT sum(quantity) FROM p), (SELECT count(DISTINCT sale_id) FROM p)
"""

STOCK_SQL = """
WITH last_sale AS (SELECT product_id, max(day) last_day FROM lines GROUP BY 1),
demand AS (SELECT product_id, sum(quantity) / 28.0 rate, sum(quantity * quantity) sq FROM
       (SELECT product_id, day, sum(quantity) quantity FROM lines
        WHERE day >= $d28 AND day < $today GROUP BY 1, 2)
       GROUP BY 1),
year AS (SELECT product_id, sum(subtotal) revenue, sum(quantity) units FROM lines WHERE day > $y GROUP BY 1),
s AS (SELECT p.*, l.last_day, coalesce(d.rate, 0) rate, coalesce(y.revenue, 0) revenue,
        coalesce(y.units, 0) units,
        CASE WHEN stock_quantity <= 0 THEN 'OUT' WHEN stock_quantity < low_stock_threshold THEN 'LOW'
             WHEN l.last_day IS NULL OR l.last_day <= $d90 THEN 'DEAD' ELSE 'OK' END status,
        CASE WHEN d.rate > 0 THEN greatest(stock_quantity, 0) / d.rate END coverage
      FROM products p LEFT JOIN last_sale l USING (product_id) LEFT JOIN demand d USING (product_id)
      LEFT JOIN year y USING (product_id))
SELECT sum(greatest(stock_quantity, 0) * price), count(*) FILTER (status = 'OUT'),
       count(*) FILTER (status = 'LOW'),
       count(*) FILTER (status = 'DEAD'), count(*) FILTER (coverage < 7), median(coverage),
       sum(units) / sum(greatest(stock_quantity, 0)),
       list(product_id ORDER BY revenue DESC), list(status)
FROM s
"""


def duckdb_baseline(
    lines: pd.DataFrame, products: pd.DataFrame, today: date, repeat: int
) -> dict[str, float]:
    connection = duckdb.connect()
    connection.register("lines", lines)
    connection.register("products", products)
    first, last = today - timedelta(days=89), today
    sales_params = {
        "first": first,
        "last": last,
        "prev_first": first - timedelta(days=90),
        "prev_last": first - timedelta(days=1),
    }
    stock_params = {
        "today": today,
        "d28": today - timedelta(days=28),
        "d90": today - timedelta(days=90),
        "y": today - timedelta(days=365),
    }
    sales_s = median_seconds(lambda: connection.execute(SALES_SQL, sales_params).fetchall(), repeat=repeat)
    stock_s = median_seconds(lambda: connection.execute(STOCK_SQL, stock_params).fetchall(), repeat=repeat)
    return {"sales_s": sales_s, "stock_s": stock_s}


def embedded_phase(store_path: Path, work: Path, repeat: int) -> dict[str, float]:
    store = EmbeddedStore(store_path)
    lines = store.sale_lines(datetime(2000, 1, 1), FAR_FUTURE).assign(
        day=lambda f: f["sold_at"].dt.floor("D")
    )
    products = store.products()
    store.close()
    baseline = duckdb_baseline(lines, products, date.today(), repeat)
    del lines
    data_dir = work / "embedded"
    data_dir.mkdir()
    shutil.copy(store_path, data_dir / "salesflow.duckdb")
    service = Service(
        {"DEV_MODE": "true", "DATA_DIR": str(data_dir), "EXPORT_DIR": str(work / "exports")}, work
    )
    try:
        with httpx.Client(base_url=service.url, timeout=120, trust_env=False) as client:
            sales_s = timed_uncached(client, "/analytics/sales?period=quarterly", repeat)
            stock_s = timed_uncached(client, "/analytics/stock", repeat)
            rps = throughput(service.url)
        rss = service.peak_rss_mb()
    finally:
        service.stop()
    return {
        "sales_quarterly_ms": round(sales_s * 1000, 1),
        "duckdb_sales_ms": round(baseline["sales_s"] * 1000, 1),
        "sales_ratio": round(sales_s / baseline["sales_s"], 2),
        "stock_ms": round(stock_s * 1000, 1),
        "duckdb_stock_ms": round(baseline["stock_s"] * 1000, 1),
        "stock_ratio": round(stock_s / baseline["stock_s"], 2),
        "server_peak_rss_mb": round(rss),
        **rps,
    }


def throughput(url: str, requests: int = 3000, concurrency: int = 16) -> dict[str, float]:
    """Cached analytics requests per second vs `/health`, from one client process."""

    async def run(path: str) -> float:
        async with httpx.AsyncClient(
            base_url=url, timeout=60, trust_env=False, limits=httpx.Limits(max_connections=concurrency)
        ) as client:
            (await client.get(path)).raise_for_status()
            queue = iter(range(requests))

            async def worker() -> None:
                for _ in queue:
                    (await client.get(path)).raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return requests / (time.perf_counter() - started)

    health = asyncio.run(run("/health"))
    cached = asyncio.run(run("/analytics/sales?period=quarterly"))
    return {
        "health_rps": round(health),
        "cached_sales_rps": round(cached),
        "cached_over_health": round(cached / health, 2),
    }


def naive_request(url: str, token: str, today: date) -> dict[str, object]:
    """The naive design: download and flatten the whole history, then compute, on every request."""
    raw = httpx.get(
        f"{url}/sales/history",
        params={"days": 3650},
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
        trust_env=False,
    ).content
    frame = pd.json_normalize(json.loads(raw), record_path="items", meta=["id", "saleDate", "totalAmount"])
    frame["day"] = pd.to_datetime(frame["saleDate"], format="ISO8601").dt.floor("D")
    window = frame[frame["day"] >= pd.Timestamp(today - timedelta(days=89))]
    daily = (
        window.groupby("day")["subtotal"]
        .sum()
        .reindex(pd.date_range(today - timedelta(days=89), today), fill_value=0)
    )
    top = window.groupby("productId")["subtotal"].sum().nlargest(5)
    return {
        "revenue": window["subtotal"].sum(),
        "quantity": window["quantity"].sum(),
        "transactions": window["id"].nunique(),
        "top": top.index.tolist(),
        "daily": daily.tolist(),
    }


def prod_phase(store_path: Path, work: Path, repeat: int) -> dict[str, float]:
    java_path = work / "java.duckdb"
    shutil.copy(store_path, java_path)
    state = StandinState(store=EmbeddedStore(java_path))
    standin = UvicornThread(create_standin(state)).start()
    admin = state.issue_access_token(state.users["0000000000"])
    today = date.today()
    java_url = f"{standin.url}/api/v1"
    headers = {"Authorization": f"Bearer {admin}"}
    for days in (400, 3650):  # render both histories once, so that neither side pays the stand-in's rendering
        httpx.get(
            f"{java_url}/sales/history", params={"days": days}, headers=headers, timeout=600, trust_env=False
        )
    naive_cold = median_seconds(lambda: naive_request(java_url, admin, today), repeat=1, warmup=0)
    env = {
        "DEV_MODE": "false",
        "APP_ENV": "test",
        "DATA_SOURCE": "java",
        "JAVA_API_URL": java_url,
        "JAVA_JWT_SECRET": DEV_SECRET,
        "JAVA_SERVICE_PHONE": "0000000000",
        "JAVA_SERVICE_PASSWORD": "password",
        "SALES_REFRESH_SECONDS": "0",
        "DATA_DIR": str(work / "prod"),
        "EXPORT_DIR": str(work / "exports"),
    }
    service = Service(env, work)
    try:
        with httpx.Client(base_url=service.url, timeout=300, trust_env=False, headers=headers) as client:
            started = time.perf_counter()
            client.get("/analytics/sales?period=quarterly").raise_for_status()
            cold_s = time.perf_counter() - started
            skus = state.store.products().query("stock_quantity > 50")["sku"].tolist()
            bulk = [{"items": [{"sku": skus[i % len(skus)], "quantity": 1}]} for i in range(1000)]
            httpx.post(
                f"{java_url}/sales/bulk", json=bulk, headers=headers, timeout=60, trust_env=False
            ).raise_for_status()
            for days in (1, 3650):  # the stand-in renders the new histories once, outside the timings
                httpx.get(
                    f"{java_url}/sales/history",
                    params={"days": days},
                    headers=headers,
                    timeout=600,
                    trust_env=False,
                )
            steady_s = timed_uncached(client, "/analytics/sales?period=quarterly", repeat)
            new_sales = client.get("/analytics/sales?period=daily").json()["kpis"]["total_transactions"]
        naive_s = median_seconds(lambda: naive_request(java_url, admin, today), repeat=3, warmup=0)
        rss = service.peak_rss_mb()
    finally:
        service.stop()
        standin.stop()
        state.store.close()
    return {
        "cold_first_request_s": round(cold_s, 2),
        "naive_per_request_s": round(naive_s, 2),
        "naive_first_s": round(naive_cold, 2),
        "cold_speedup": round(naive_s / cold_s, 1),
        "steady_after_1000_sales_ms": round(steady_s * 1000, 1),
        "steady_speedup": round(naive_s / steady_s, 1),
        "todays_transactions_seen": new_sales,
        "server_peak_rss_mb": round(rss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--phase", choices=["all", "embedded", "prod"], default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        store_path = work / "store.duckdb"
        store = EmbeddedStore(store_path)
        seeded = store.seed_demo(
            today=date.today(), n_products=args.products, days=730, seed=42, target_lines=args.lines
        )
        store.close()
        common = {"lines": seeded.lines_written, "products": args.products}
        if args.phase in ("all", "embedded"):
            emit("analytics_embedded", {**common, **embedded_phase(store_path, work, args.repeat)})
        if args.phase in ("all", "prod"):
            emit("analytics_prod", {**common, **prod_phase(store_path, work, args.repeat)})
    sys.stdout.flush()


if __name__ == "__main__":
    main()
