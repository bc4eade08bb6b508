"""Java history reads for 50 mixed, uncached ML requests (PROD mode, the Java stand-in over HTTP).

    .venv/bin/python -m bench.ml_history_reads [--products 200] [--days 400]

Seeds the stand-in with a demo store, serves the app on it (PROD mode, no Redis), then sends 50 distinct
forecast and anomaly requests (GLOBAL and per product, daily, weekly and monthly buckets): each one misses the
result cache. The baseline is what the earlier loader did: one whole-history read per cache miss, i.e. one per
request. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import httpx
from tests.builders import TODAY, pinned_clock
from tests.servers import UvicornThread

from bench.common import emit
from salesflow.api.main import create_app
from salesflow.config import Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import DEV_SECRET, StandinState, create_standin


def requests(skus: list[str]) -> list[tuple[str, dict[str, object]]]:
    mixed: list[tuple[str, dict[str, object]]] = []
    for days, period in ((7, "daily"), (14, "daily"), (28, "weekly"), (60, "monthly"), (30, "weekly")):
        mixed.append(("/ml/forecast", {"scope": "GLOBAL", "forecast_days": days, "period": period}))
    mixed.append(("/ml/anomalies", {"scope": "GLOBAL"}))
    for sku in skus:
        mixed.append(("/ml/forecast", {"scope": "PRODUCT", "sku": sku, "forecast_days": 14}))
        mixed.append(("/ml/anomalies", {"scope": "PRODUCT", "sku": sku}))
    return mixed[:50]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--days", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder) / "java.duckdb")
        store.seed_demo(today=TODAY, n_products=args.products, days=args.days, seed=3)
        state = StandinState(store=store, clock=pinned_clock)
        java = UvicornThread(create_standin(state)).start()
        settings = Settings(
            _env_file=None,
            app_env="test",
            data_source="java",
            java_api_url=f"{java.url}/api/v1",
            java_jwt_secret=DEV_SECRET,
            java_service_phone="0000000000",
            java_service_password="password",
            data_dir=Path(folder) / "data",
            export_dir=Path(folder) / "exports",
            demand_forecasts=False,
        )
        app = UvicornThread(create_app(settings, clock=pinned_clock)).start()
        token = state.issue_access_token(state.users["0000000000"])
        try:
            with httpx.Client(
                base_url=f"{app.url}/api/v1",
                headers={"Authorization": f"Bearer {token}"},
                timeout=300,
                trust_env=False,
            ) as api:
                sales = api.get("/analytics/sales", params={"period": "quarterly"}).json()
                top = sales["kpis"]["top_products"]
                year = store.sale_lines(
                    datetime.combine(TODAY, clock_time()) - timedelta(days=365), datetime.max
                )
                products = year["sku"].unique().tolist()
                skus = [p["sku"] for p in top] + [s for s in products if s not in {p["sku"] for p in top}]
                started = time.perf_counter()
                statuses = [api.post(path, json=body).status_code for path, body in requests(skus[:22])]
                elapsed = time.perf_counter() - started
            reads = sum(1 for _, path in state.requests if path == "/api/v1/sales/history")
        finally:
            app.stop()
            java.stop()
            store.close()
    emit(
        "ml_history_reads",
        {
            "requests": len(statuses),
            "ok": statuses.count(200),
            # the cold load (made by the first analytics call), then tail refreshes (`days=1`) at most
            # once per SALES_REFRESH_SECONDS while the requests run
            "history_reads": reads,
            "baseline_history_reads": len(statuses),  # one per cache miss before
            "seconds": round(elapsed, 1),
        },
    )


if __name__ == "__main__":
    main()
