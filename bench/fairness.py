"""One user's bursts against another user's requests (issue 19), in PROD with Java's stand-in.

    .venv/bin/python -m bench.fairness [--uploads 12] [--rows 200000] [--reports 15]

Uploads: a USER sends `--uploads` CSV files at once, each ~20 MB of rows naming products that do not exist
(seconds each to read); a second later an ADMIN previews a 3-row file. Reports: the USER submits
`--reports` combined PDF report jobs at once; then the ADMIN asks `POST /reports/generate` for a sales PDF and
waits for it. Measured: the ADMIN's answer times (and each alone, on the same server), the USER's statuses,
the server's peak RSS growth, the slowest `/health` meanwhile. Two rounds, each on a fresh `salesflow
serve`: the defaults (one upload in flight per user and 4 waiting; 5 report jobs per user) and, as the
same-run baseline, those bounds opened wide (every upload waits for a parser and every report job is
accepted, as before). One JSON line per round.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tests.servers import answers, free_port, wait_until

from bench.common import SERVICE_PHONE, emit, java_standin, standin_env
from bench.hostile_uploads import rss_mb, while_polling

SMALL = b"date,sku,quantity\n2026-03-01,NOPE-1,1\n2026-03-01,NOPE-2,2\n2026-03-01,NOPE-3,3\n"
USER_PHONE = "0600000001"
WIDE_OPEN = {
    "IMPORT_UPLOADS_PER_USER": "32",
    "IMPORT_UPLOADS_WAITING": "1000",
    "REPORT_JOBS_PER_USER": "1000",
}
COMBINED = {"report_type": "combined", "format": "pdf"}
SALES = {"report_type": "sales", "format": "pdf", "period": "monthly"}


def slow_file(rows: int) -> bytes:
    """Rows of unknown products with long names: every row is read, matched and reported on."""
    lines = ["date,sku,product,quantity"] + [
        f"2026-03-01,NOPE-{k:06d},A product nobody has ever heard of in this shop number {k:06d},1"
        for k in range(rows)
    ]
    return "\n".join(lines).encode()[: 20 * 1024 * 1024 - 1]


def preview(base: str, token: str, content: bytes) -> tuple[int, float]:
    with httpx.Client(base_url=base, timeout=600, trust_env=False) as client:
        started = time.perf_counter()
        answer = client.post(
            "/excel/preview",
            files={"file": ("sales.csv", content, "text/csv")},
            headers={"Authorization": f"Bearer {token}"},
        )
        return answer.status_code, time.perf_counter() - started


def generate(base: str, token: str) -> tuple[int, float]:
    with httpx.Client(base_url=base, timeout=600, trust_env=False) as client:
        started = time.perf_counter()
        answer = client.post("/reports/generate", json=SALES, headers={"Authorization": f"Bearer {token}"})
        return answer.status_code, time.perf_counter() - started


def report_round(base: str, tokens: dict[str, str], reports: int) -> dict[str, Any]:
    generate(base, tokens["ADMIN"])  # the first report of a process loads fonts and data
    alone = generate(base, tokens["ADMIN"])[1]
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
        flooder = {"Authorization": f"Bearer {tokens['USER']}"}
        statuses = [
            client.post("/reports/jobs", json=COMBINED, headers=flooder).status_code for _ in range(reports)
        ]
    status, neighbour = generate(base, tokens["ADMIN"])
    return {
        "report_neighbour_alone_seconds": round(alone, 2),
        "report_neighbour_status": status,
        "report_neighbour_seconds": round(neighbour, 2),
        "report_burst_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def run_round(
    base: str, pid: int, tokens: dict[str, str], burst: list[bytes], reports: int
) -> dict[str, Any]:
    alone = preview(base, tokens["ADMIN"], SMALL)[1]
    hwm_before = rss_mb(pid)["VmHWM"]

    def flood_and_neighbour() -> dict[str, Any]:
        with ThreadPoolExecutor(len(burst)) as pool:
            flood = [pool.submit(preview, base, tokens["USER"], content) for content in burst]
            time.sleep(1.0)  # the burst's bodies are on their way: the neighbour comes after them
            status, neighbour = preview(base, tokens["ADMIN"], SMALL)
            answers_ = [future.result() for future in flood]
        statuses = [s for s, _ in answers_]
        return {
            "neighbour_status": status,
            "neighbour_seconds": round(neighbour, 2),
            "burst_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "burst_last_answer_s": round(max(t for _, t in answers_), 1),
        }

    with httpx.Client(base_url=base, timeout=30, trust_env=False) as health:
        outcome, _, samples = while_polling(health, flood_and_neighbour)
        figures = {
            "neighbour_alone_seconds": round(alone, 2),
            **outcome,
            "peak_rss_growth_mb": round(rss_mb(pid)["VmHWM"] - hwm_before, 1),
            "health_max_ms": round(max(samples, default=0) * 1000, 1),
        }
        reported, _, samples = while_polling(health, lambda: report_round(base, tokens, reports))
    return {**figures, **reported, "report_health_max_ms": round(max(samples, default=0) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=12)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--reports", type=int, default=15)
    args = parser.parse_args()
    burst = [slow_file(args.rows)] * args.uploads
    with (
        tempfile.TemporaryDirectory() as folder,
        java_standin(Path(folder), products=100, days=120) as (state, java_url),
    ):
        root = Path(folder)
        tokens = {
            "ADMIN": state.issue_access_token(state.users[SERVICE_PHONE]),
            "USER": state.issue_access_token(state.users[USER_PHONE]),
        }
        env = standin_env(java_url, root, RATE_LIMIT_EXPENSIVE="0")
        for name, extra in (("admission (defaults)", {}), ("baseline: admission wide open", WIDE_OPEN)):
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "salesflow.cli", "serve"],
                env={**env, **extra, "PORT": str(port), "DATA_DIR": str(root / f"api{port}")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            base = f"http://127.0.0.1:{port}/api/v1"
            try:
                with httpx.Client(base_url=base, timeout=30, trust_env=False) as probe:
                    wait_until(lambda probe=probe: answers(probe), timeout=120, what="the server")
                preview(base, tokens["ADMIN"], SMALL)  # products loaded, parsers started
                figures = run_round(base, server.pid, tokens, burst, args.reports)
                emit("fairness", {"round": name, **figures})
            finally:
                server.terminate()
                server.wait(60)


if __name__ == "__main__":
    main()
