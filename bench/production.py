"""The production shape under load, over a soak, and under faults (issue 12).

    .venv/bin/python -m bench.production load [--lines 1000000] [--seconds 60]
    .venv/bin/python -m bench.production soak [--minutes 10]
    .venv/bin/python -m bench.production faults [--only redis,java_hung,...]

Processes, all on loopback: the Java stand-in in a process of its own on a seeded store (`--lines` sale lines,
500 products), reached through a fault proxy (this process) that can refuse, slow (5 s), hang or answer
garbage JSON; a private redis-server (cache and job queue); a PostgreSQL database of the bench's own (state);
2 `salesflow serve` (PROD, JOB_BACKEND=redis, scheduler on) and 2 `salesflow worker`; an SMTP server
(aiosmtpd, this process); `EXPORT_DIR` on a 256 MB tmpfs (so that it can be filled).

- `load`: wrk, 16 connections (8 per API process), on cached `/analytics/sales?period=weekly`, and on
  `/health` as the same-run baseline; then the user mix (16 clients, this process) for `--seconds`.
- `soak`: the user mix for `--minutes`; each process's RSS every 30 s.
- `faults`: the user mix (8 clients) while each fault is injected, then removed; what users saw (statuses,
  500s without a detail, slowest answer, answers flagged stale) and whether a job or an e-mail was lost.

Rate limits are off (`RATE_LIMIT_EXPENSIVE=0`): 16 clients share two accounts. Needs `wrk` (apt-get install
wrk) and root for the tmpfs. Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from aiosmtpd.controller import Controller
from tests.servers import RedisProcess, free_port, postgres_database, wait_until

from bench.common import emit, seed_demo_store
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.integration.java_demo import DEV_SECRET, StandinState, create_standin

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
ADMIN_PHONE, USER_PHONE = "0000000000", "0600000001"
LEASE_SECONDS = 30  # a killed worker's job is taken again after this (600 by default)
GARBAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
    b'{"content":['
)


# --- the Java stand-in, in a process of its own, and the fault proxy in front of it -----------------------


def serve_standin(store_path: str, port: int) -> None:
    state = StandinState(store=EmbeddedStore(Path(store_path)), record_requests=False)
    uvicorn.run(create_standin(state), host="127.0.0.1", port=port, log_level="warning")


class FaultProxy:
    """TCP proxy from `port` to the stand-in; `mode`: pass, slow (5 s before each answer), hang, garbage."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.mode = "pass"
        self._connections: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result()
        return self

    def set_mode(self, mode: str) -> None:
        """New connections get `mode`; open ones are dropped so that pooled clients reconnect into it."""
        self.mode = mode
        asyncio.run_coroutine_threadsafe(self._drop_all(), self._loop).result()

    async def _drop_all(self) -> None:
        for writer in list(self._connections):
            writer.close()

    async def _listen(self) -> None:
        await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        mode = self.mode
        try:
            if mode == "hang":
                await reader.read()  # until the client gives up
                return
            if mode == "garbage":
                await reader.readuntil(b"\r\n\r\n")
                writer.write(GARBAGE)
                await writer.drain()
                return
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._connections.add(upstream_writer)
            delay = 5.0 if mode == "slow" else 0.0
            await asyncio.gather(
                _pipe(reader, upstream_writer, 0.0),
                _pipe(upstream_reader, writer, delay),
                return_exceptions=True,
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._connections.discard(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while chunk := await reader.read(65536):
            if delay:  # the first bytes of each answer wait (a slow Java), the rest stream
                await asyncio.sleep(delay)
                delay = 0.0
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()


# --- the production shape -------------------------------------------------------------------------------


@dataclass
class Shape:
    root: Path
    store_path: Path
    state_url: str
    standin: subprocess.Popen[bytes] | None = None
    standin_port: int = field(default_factory=free_port)
    proxy: FaultProxy | None = None
    redis: RedisProcess | None = None
    smtp: Controller | None = None
    smtp_port: int = field(default_factory=free_port)
    mails: list[bytes] = field(default_factory=list)
    apis: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_ports: dict[str, int] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def export_dir(self) -> Path:
        return self.root / "exports"

    def env(self, name: str) -> dict[str, str]:
        assert self.proxy is not None and self.redis is not None
        base = {k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_", "SYSTEM_"))}
        return {
            **base,
            "APP_ENV": "production",
            "DATA_SOURCE": "java",
            "JAVA_API_URL": f"http://127.0.0.1:{self.proxy.port}/api/v1",
            "JAVA_JWT_SECRET": DEV_SECRET,
            "JAVA_SERVICE_PHONE": ADMIN_PHONE,
            "JAVA_SERVICE_PASSWORD": "password",
            "REDIS_URL": self.redis.url,
            "JOB_BACKEND": "redis",
            "STATE_DATABASE_URL": self.state_url,
            "DATA_DIR": str(self.root / name),
            "EXPORT_DIR": str(self.export_dir),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "SMTP_STARTTLS": "false",
            "MAIL_FROM": "salesflow@example.invalid",
            "ALERT_RECIPIENTS": "manager@example.invalid",
            "MAIL_DELIVERY_SECONDS": "2",
            "REPORT_JOB_TIMEOUT_SECONDS": str(LEASE_SECONDS),
            "JOB_SWEEP_SECONDS": "5",
            "RATE_LIMIT_EXPENSIVE": "0",
            "DEMAND_FORECASTS": "false",
            "LOG_LEVEL": "WARNING",
        }

    def start_standin(self) -> None:
        self.standin = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.production",
                "standin",
                str(self.store_path),
                str(self.standin_port),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _listening(self.standin_port), timeout=300, what="the Java stand-in")

    def stop_standin(self) -> None:
        if self.standin is not None:
            self.standin.terminate()
            self.standin.wait(30)

    def start_smtp(self) -> None:
        mails = self.mails

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
                mails.append(envelope.content)
                return "250 OK"

        self.smtp = Controller(Handler(), hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()

    def stop_smtp(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None

    def start_api(self, name: str) -> None:
        port = self.api_ports.setdefault(name, free_port())
        self.apis[name] = self._spawn("serve", name, PORT=str(port))
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/api/v1/health"), timeout=300, what=name)

    def start_worker(self, name: str) -> None:
        self.workers[name] = self._spawn("worker", name)

    def _spawn(self, command: str, name: str, **extra: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        return subprocess.Popen(
            [str(ROOT / ".venv/bin/salesflow"), command],
            env={**self.env(name), **extra},
            stdout=log,
            stderr=log,
        )

    @property
    def api_urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{port}/api/v1" for name, port in self.api_ports.items() if name in self.apis
        ]

    def rss_mb(self) -> dict[str, float]:
        processes = {**self.apis, **self.workers}
        return {name: _rss_mb(process.pid) for name, process in processes.items() if process.poll() is None}

    def stop_all(self) -> None:
        for process in [*self.apis.values(), *self.workers.values()]:
            process.terminate()
        for process in [*self.apis.values(), *self.workers.values()]:
            process.wait(60)
        self.stop_standin()
        self.stop_smtp()
        if self.redis is not None:
            self.redis.stop()


@contextmanager
def production_shape(lines: int) -> Iterator[Shape]:
    OUT.mkdir(parents=True, exist_ok=True)
    today = date.today()
    store_path = OUT / f"production-{lines}-{today.isoformat()}.duckdb"
    if not store_path.exists():
        seed_demo_store(store_path, today=today, products=500, lines=lines)
    with postgres_database("salesflow_bench_prod") as state_url, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copy(store_path, root / "java.duckdb")
        shape = Shape(root=root, store_path=root / "java.duckdb", state_url=state_url)
        (root / "exports").mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(shape.export_dir)], check=True
        )
        try:
            shape.start_standin()
            shape.proxy = FaultProxy(shape.standin_port).start()
            (root / "redis").mkdir()
            shape.redis = RedisProcess(root / "redis").start()
            shape.start_smtp()
            shape.start_api("api0")  # the first migrates the state database and declares the queue
            shape.start_api("api1")
            shape.start_worker("worker0")
            shape.start_worker("worker1")
            standin = StandinState(store=EmbeddedStore(root / "tokens.duckdb"))  # issues tokens only
            shape.tokens = {
                role: standin.issue_access_token(standin.users[phone])
                for role, phone in (("ADMIN", ADMIN_PHONE), ("USER", USER_PHONE))
            }
            standin.store.close()
            yield shape
        finally:
            shape.stop_all()
            subprocess.run(["umount", str(shape.export_dir)], check=False)
            for log in root.glob("*.log"):  # kept for reading what the processes said
                shutil.copy(log, OUT / f"production-{log.name}")


# --- load: wrk, and the user mix -------------------------------------------------------------------------


def wrk(urls: list[str], path: str, token: str, seconds: int, connections: int = 16) -> dict[str, float]:
    """Connections split over the API processes (as a load balancer would); summed rate, worst percentiles."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    runs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{connections // len(urls)}", f"-d{seconds}s", "--latency",
             "-H", f"Authorization: Bearer {token}", f"{url}{path}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]  # fmt: skip
    outputs = [run.communicate()[0] for run in runs]
    return {
        "req_per_s": round(sum(_wrk_figure(o, r"Requests/sec:\s+([\d.]+)") for o in outputs)),
        "p50_ms": round(max(_wrk_latency(o, "50%") for o in outputs), 2),
        "p99_ms": round(max(_wrk_latency(o, "99%") for o in outputs), 2),
        "non_2xx": sum(int(_wrk_figure(o, r"Non-2xx or 3xx responses:\s+(\d+)", 0)) for o in outputs),
        "socket_errors": sum(len(re.findall(r"Socket errors", o)) for o in outputs),
    }


def _wrk_figure(output: str, pattern: str, default: float | None = None) -> float:
    found = re.search(pattern, output)
    if found is None:
        if default is None:
            raise RuntimeError(f"wrk printed no {pattern!r}:\n{output}")
        return default
    return float(found.group(1))


def _wrk_latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


@dataclass(frozen=True)
class Sample:
    at: float
    kind: str
    status: int
    seconds: float
    stale: bool
    detail_missing: bool  # an error answer without a clean `detail`


class UserMix:
    """`clients` simulated users in a thread of their own, round-robin over the API processes."""

    def __init__(self, shape: Shape, clients: int, *, products: int = 500) -> None:
        self.shape = shape
        self.clients = clients
        self.products = products
        self.samples: list[Sample] = []
        self.job_ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> UserMix:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(timeout=60, trust_env=False, limits=limits) as http:
            await asyncio.gather(*(self._user(http, i) for i in range(self.clients)))

    async def _user(self, http: httpx.AsyncClient, index: int) -> None:
        rng = random.Random(index)
        role = "ADMIN" if index % 4 == 0 else "USER"
        headers = {"Authorization": f"Bearer {self.shape.tokens[role]}"}
        n = 0
        while not self._stop.is_set():
            urls = self.shape.api_urls
            base = urls[(index + n) % len(urls)]
            n += 1
            kind, method, path, kwargs = _request(rng, role, self.products)
            started = time.perf_counter()
            try:
                response = await http.request(method, f"{base}{path}", headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                self.samples.append(
                    Sample(
                        time.time(), kind, 0, time.perf_counter() - started, False, type(exc).__name__ != ""
                    )
                )
                await asyncio.sleep(0.2)  # a process being restarted: the user tries again shortly
                continue
            seconds = time.perf_counter() - started
            missing = response.status_code >= 400 and not _has_detail(response)
            self.samples.append(
                Sample(
                    time.time(),
                    kind,
                    response.status_code,
                    seconds,
                    "x-data-stale-since" in response.headers,
                    missing,
                )
            )
            if kind == "report_job" and response.status_code == 202:
                self.job_ids.append(response.json()["job_id"])


def _request(rng: random.Random, role: str, products: int) -> tuple[str, str, str, dict[str, Any]]:
    roll = rng.random()
    if roll < 0.35:
        period = rng.choice(["daily", "weekly", "monthly", "quarterly"])
        return "analytics_sales", "GET", f"/analytics/sales?period={period}", {}
    if roll < 0.50:
        return "analytics_stock", "GET", "/analytics/stock", {}
    if roll < 0.60:
        return "stock_alerts", "GET", "/stock/alerts", {}
    if roll < 0.70:
        body = {"scope": "PRODUCT", "product_id": rng.randint(1, 60), "forecast_days": 14}
        return "forecast", "POST", "/ml/forecast", {"json": body}
    if roll < 0.75:
        return "anomalies", "POST", "/ml/anomalies", {"json": {"scope": "GLOBAL"}}
    if roll < 0.80:
        csv = "date,sku,quantity\n" + "".join(f"2026-01-0{d},SKU-{d:05d},2\n" for d in range(1, 6))
        return "import_preview", "POST", "/excel/preview", {"files": {"file": ("sales.csv", csv.encode())}}
    if roll < 0.83:
        body = {"report_type": "sales", "format": "pdf", "period": "weekly"}
        return "report_job", "POST", "/reports/jobs", {"json": body}
    if roll < 0.90:
        return "report_list", "GET", "/reports/jobs?limit=20", {}
    return "me", "GET", "/auth/me", {}


def _has_detail(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("detail"))


def summarize(samples: list[Sample]) -> dict[str, Any]:
    if not samples:
        return {"requests": 0}
    seconds = max(s.at for s in samples) - min(s.at for s in samples)
    latencies = sorted(s.seconds for s in samples)
    by_kind: dict[str, list[float]] = {}
    for s in samples:
        by_kind.setdefault(s.kind, []).append(s.seconds)
    return {
        "requests": len(samples),
        "req_per_s": round(len(samples) / max(seconds, 1e-9), 1),
        "p50_ms": round(_percentile(latencies, 0.5) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "over_5s": sum(1 for v in latencies if v > 5),
        "statuses": dict(Counter(str(s.status) for s in samples)),
        "5xx": sum(1 for s in samples if s.status >= 500),
        "500": sum(1 for s in samples if s.status == 500),
        "errors_without_detail": sum(1 for s in samples if s.detail_missing),
        "connection_errors": sum(1 for s in samples if s.status == 0),
        "stale_answers": sum(1 for s in samples if s.stale),
        "p99_ms_by_kind": {
            k: round(_percentile(sorted(v), 0.99) * 1000, 1) for k, v in sorted(by_kind.items())
        },
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_load(shape: Shape, seconds: int, rounds: int = 3) -> None:
    admin = shape.tokens["ADMIN"]
    cached = "/analytics/sales?period=weekly"
    for url in shape.api_urls:  # each process answers once, so that wrk measures cached answers
        httpx.get(f"{url}{cached}", headers=_auth(admin), timeout=300).raise_for_status()
    wait_until_quiet()
    wrk(shape.api_urls, cached, admin, 10)  # warm-up, not recorded
    figures: dict[str, list[dict[str, float]]] = {"/health": [], cached: []}
    before = _duration_buckets(shape, "/api/v1/analytics/sales")
    lag_before, gc_before = _lag_buckets(shape), _gc_buckets(shape)
    for _ in range(rounds):  # alternated, so that both see the same machine
        for path in figures:
            figures[path].append(wrk(shape.api_urls, path, admin, 15))
    after = _duration_buckets(shape, "/api/v1/analytics/sales")
    lag_after, gc_after = _lag_buckets(shape), _gc_buckets(shape)
    # The service's own view of the same requests: its latency histogram, from handler entry to last byte.
    served = {le: after[le] - before.get(le, 0.0) for le in after}
    total = served["+Inf"]
    within = next(le for le, count in served.items() if count >= 0.99 * total)
    # How late the API processes' event loops ran a timer meanwhile: the wait a request has before its
    # handler starts (which the histogram above does not see).
    lagged = {le: lag_after[le] - lag_before.get(le, 0.0) for le in lag_after}
    ticks = lagged["+Inf"]
    lag_p99 = next(le for le, count in lagged.items() if count >= 0.99 * ticks)
    lag_p50 = next(le for le, count in lagged.items() if count >= 0.5 * ticks)
    # Full collections meanwhile: how many, and the bucket the slowest fell in (a pause stops every request).
    full = {le: gc_after[le] - gc_before.get(le, 0.0) for le in gc_after}
    slowest_full = next(le for le, count in full.items() if count >= full["+Inf"]) if full["+Inf"] else "none"
    emit(
        "production_server_side",
        {
            "path": cached,
            "requests": total,
            "p99_at_most_s": within,
            "event_loop_lag_p50_at_most_s": lag_p50,
            "event_loop_lag_p99_at_most_s": lag_p99,
            "event_loop_lags_over_100ms": ticks - lagged["0.1"],
            "full_gc_pauses": full["+Inf"],
            "slowest_full_gc_pause_at_most_s": slowest_full,
        },
    )
    for path, runs in figures.items():
        emit(
            "production_wrk",
            {
                "path": path,
                "connections": 16,
                "rounds": rounds,
                **{k: statistics.median(run[k] for run in runs) for k in ("req_per_s", "p50_ms", "p99_ms")},
                "p99_ms_each": [run["p99_ms"] for run in runs],
                "non_2xx": sum(run["non_2xx"] for run in runs),
            },
        )
    with UserMix(shape, 16) as mix:
        time.sleep(seconds)  # the measurement window
    emit("production_mix", {"clients": 16, "seconds": seconds, **summarize(mix.samples)})


def _duration_buckets(shape: Shape, route: str) -> dict[str, float]:
    """`salesflow_http_request_duration_seconds` buckets of `route`, summed over the API processes."""
    bucket = "salesflow_http_request_duration_seconds_bucket"
    return _summed_buckets(shape, re.compile(rf'{bucket}{{le="([^"]+)",route="{re.escape(route)}"}} (\S+)'))


def _lag_buckets(shape: Shape) -> dict[str, float]:
    """`salesflow_event_loop_lag_seconds` buckets, summed over the API processes."""
    return _summed_buckets(
        shape, re.compile(r'salesflow_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)')
    )


def _gc_buckets(shape: Shape) -> dict[str, float]:
    """`salesflow_gc_pause_seconds` buckets of full collections (generation 2), summed over the API
    processes."""
    return _summed_buckets(
        shape, re.compile(r'salesflow_gc_pause_seconds_bucket\{generation="2",le="([^"]+)"\} (\S+)')
    )


def _summed_buckets(shape: Shape, pattern: re.Pattern[str]) -> dict[str, float]:
    buckets: dict[str, float] = {}
    for url in shape.api_urls:
        text = httpx.get(
            url.replace("/api/v1", "/metrics"), headers=_auth(shape.tokens["ADMIN"]), timeout=30
        ).text
        for le, count in pattern.findall(text):
            buckets[le] = buckets.get(le, 0.0) + float(count)
    return buckets


def wait_until_quiet(idle_share: float = 0.8, timeout: float = 300) -> None:
    """Until the machine is mostly idle for 5 s: start-up work (model warm-up, the first alert check, the
    workers' first line loads) is over."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = _cpu_times()
        time.sleep(5)
        after = _cpu_times()
        busy, idle = after[0] - before[0], after[1] - before[1]
        if idle / max(busy + idle, 1) >= idle_share:
            return


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, idle


def run_soak(shape: Shape, minutes: float) -> None:
    wait_until_quiet()
    rss: list[dict[str, float]] = []
    with UserMix(shape, 8) as mix:
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            rss.append(shape.rss_mb())
            time.sleep(30)
        rss.append(shape.rss_mb())
    first, last = rss[min(2, len(rss) - 1)], rss[-1]  # after the first minute: caches filled
    emit(
        "production_soak",
        {
            "minutes": minutes,
            "rss_mb_after_1_min": first,
            "rss_mb_at_end": last,
            "growth_mb": {name: round(last[name] - first[name], 1) for name in last if name in first},
            "rss_mb_every_30_s": rss,
            **summarize(mix.samples),
        },
    )


# --- faults ----------------------------------------------------------------------------------------------


def under_fault(
    shape: Shape, name: str, inject: Callable[[], None], remove: Callable[[], None], hold: float = 20.0
) -> dict[str, Any]:
    """The mix before, during and after the fault; then every report job of the phase must complete."""
    with UserMix(shape, 8) as mix:
        time.sleep(5)  # a stretch of normal service before the fault
        started = time.time()
        inject()
        time.sleep(hold)  # the fault lasts this long
        remove()
        removed = time.time()
        time.sleep(20)  # recovery, under load
    during = [s for s in mix.samples if started <= s.at <= removed]
    after = [s for s in mix.samples if s.at > removed]
    recovered = next((s.at - removed for s in after if 200 <= s.status < 300 and not s.stale), None)
    jobs = _finish_jobs(shape, mix.job_ids)
    return {
        "fault": name,
        "during": summarize(during),
        "after": summarize(after),
        "seconds_to_first_fresh_answer": None if recovered is None else round(recovered, 1),
        "report_jobs": jobs,
    }


def _finish_jobs(shape: Shape, job_ids: list[str], timeout: float = 240) -> dict[str, int]:
    admin = _auth(shape.tokens["ADMIN"])
    states: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id in job_ids:
            if states.get(job_id) in ("completed", "failed"):
                continue
            try:
                answer = httpx.get(f"{shape.api_urls[0]}/reports/jobs/{job_id}", headers=admin, timeout=30)
                states[job_id] = answer.json()["status"]
            except (httpx.HTTPError, KeyError, ValueError):
                continue
        if all(states.get(j) in ("completed", "failed") for j in job_ids):
            break
        time.sleep(1)
    counts = Counter(states.get(j, "unknown") for j in job_ids)
    return {"submitted": len(job_ids), **counts}


def run_faults(shape: Shape, only: set[str] | None) -> None:
    assert shape.proxy is not None and shape.redis is not None
    proxy, redis = shape.proxy, shape.redis
    for url in shape.api_urls:  # every process has the lines and products before the first fault
        httpx.get(
            f"{url}/analytics/stock", headers=_auth(shape.tokens["ADMIN"]), timeout=300
        ).raise_for_status()

    def pg_restart() -> None:
        version = os.listdir("/etc/postgresql")[0]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)

    faults: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
        ("redis_stopped", redis.stop, lambda: _ignore(redis.start())),
        ("java_stopped", shape.stop_standin, shape.start_standin),
        ("java_slow_5s", lambda: proxy.set_mode("slow"), lambda: proxy.set_mode("pass")),
        ("java_hung", lambda: proxy.set_mode("hang"), lambda: proxy.set_mode("pass")),
        ("java_garbage_json", lambda: proxy.set_mode("garbage"), lambda: proxy.set_mode("pass")),
        ("postgres_restarted", pg_restart, lambda: None),
        ("export_dir_full", lambda: _fill(shape.export_dir), lambda: _unfill(shape.export_dir)),
    ]
    for name, inject, remove in faults:
        if only is None or name in only:
            emit("production_fault", under_fault(shape, name, inject, remove))
    if only is None or "smtp_down" in only:
        emit("production_fault", smtp_down(shape))
    if only is None or "worker_killed" in only:
        emit("production_fault", worker_killed(shape))
    if only is None or "api_restarted" in only:
        emit("production_fault", api_restarted(shape))


def _fill(folder: Path) -> None:
    """Write a file until the disk refuses more."""
    chunk = b"\0" * (1024 * 1024)
    with (folder / "filler").open("wb", buffering=0) as filler:
        try:
            while filler.write(chunk):
                pass
        except OSError:
            pass  # full


def _unfill(folder: Path) -> None:
    (folder / "filler").unlink(missing_ok=True)


def smtp_down(shape: Shape) -> dict[str, Any]:
    """A new stock alert while the SMTP server is away: its digest waits in the outbox, then goes once."""
    admin = _auth(shape.tokens["ADMIN"])
    api = shape.api_urls[0]
    shape.stop_smtp()
    before = len(shape.mails)
    _sell_a_product_out(shape)
    checked = httpx.post(f"{api}/alerts/check", headers=admin, timeout=120)
    time.sleep(10)  # delivery attempts fail meanwhile (every MAIL_DELIVERY_SECONDS)
    ready = httpx.get(f"{api}/health/ready", timeout=30).json()["checks"]
    shape.start_smtp()
    wait_until(lambda: len(shape.mails) > before, timeout=180, what="the digest after SMTP returned")
    time.sleep(5)  # any duplicate would arrive within a few delivery periods
    outbox = asyncio.run(_outbox_statuses(shape.state_url))
    return {
        "fault": "smtp_down",
        "alert_check_status": checked.status_code,
        "readiness_while_down": {k: ready[k]["status"] for k in ("smtp", "mail_outbox") if k in ready},
        "digests_received_after": len(shape.mails) - before,
        "outbox": outbox,
    }


def _sell_a_product_out(shape: Shape) -> None:
    """Sell, through Java, all the stock of a product that has some: an out-of-stock alert opens."""
    java = f"http://127.0.0.1:{shape.standin_port}/api/v1"
    admin = _auth(shape.tokens["ADMIN"])
    products = httpx.get(f"{java}/products", headers=admin, timeout=60).json()
    candidate = max(products, key=lambda p: p["stockQuantity"] if p["stockQuantity"] < 200 else -1)
    sale = [{"items": [{"sku": candidate["sku"], "quantity": candidate["stockQuantity"]}]}]
    httpx.post(f"{java}/sales/bulk", json=sale, headers=admin, timeout=60).raise_for_status()


async def _outbox_statuses(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await connection.fetch("SELECT status, count(*) AS n FROM mail_outbox GROUP BY status")
    finally:
        await connection.close()
    return {row["status"]: row["n"] for row in rows}


def worker_killed(shape: Shape) -> dict[str, Any]:
    """A worker SIGKILLed while it holds a job: every job completes once (taken again after its lease)."""
    admin = _auth(shape.tokens["ADMIN"])
    api = shape.api_urls[0]
    body = {"report_type": "combined", "format": "pdf"}
    ids = [
        httpx.post(f"{api}/reports/jobs", json=body, headers=admin, timeout=60).json()["job_id"]
        for _ in range(8)
    ]
    victim: dict[str, Any] = {}

    def generating() -> bool:
        for job_id in ids:
            state = httpx.get(f"{api}/reports/jobs/{job_id}", headers=admin, timeout=30).json()
            if state["status"] == "generating" and state["worker"]:
                victim.update(state)
                return True
        return False

    wait_until(generating, timeout=120, interval=0.05, what="a job in progress")
    pid = int(str(victim["worker"]).rsplit(":", 1)[1])
    name = next(n for n, p in shape.workers.items() if p.pid == pid)
    started = time.monotonic()
    shape.workers[name].send_signal(signal.SIGKILL)
    shape.workers[name].wait(30)
    shape.start_worker(name)  # the supervisor restarts it
    jobs = _finish_jobs(shape, ids)
    taken_again = httpx.get(f"{api}/reports/jobs/{victim['job_id']}", headers=admin, timeout=30).json()
    return {
        "fault": "worker_killed",
        "report_jobs": jobs,
        "killed_job_attempts": taken_again["attempts"],
        "killed_job_status": taken_again["status"],
        "seconds_until_all_done": round(time.monotonic() - started, 1),
        "lease_seconds": LEASE_SECONDS,
    }


def api_restarted(shape: Shape) -> dict[str, Any]:
    """Both API processes stopped across a schedule's slot, with jobs queued (workers stopped too): at restart
    the slot runs once and every job completes."""
    admin = _auth(shape.tokens["ADMIN"])
    api = shape.api_urls[0]
    slot = (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    schedule = httpx.post(
        f"{api}/reports/schedules",
        json={
            "report_type": "stock",
            "format": "excel",
            "hour": slot.hour,
            "minute": slot.minute,
            "timezone": "UTC",
        },
        headers=admin,
        timeout=60,
    ).json()
    for process in shape.workers.values():
        process.terminate()
        process.wait(60)
    body = {"report_type": "sales", "format": "excel"}
    ids = [
        httpx.post(f"{api}/reports/jobs", json=body, headers=admin, timeout=60).json()["job_id"]
        for _ in range(5)
    ]
    for process in shape.apis.values():
        process.terminate()  # SIGTERM: graceful
        process.wait(60)
    while datetime.now(UTC) < slot + timedelta(seconds=20):  # the slot passes while nothing runs
        time.sleep(1)
    for name in list(shape.apis):
        shape.start_api(name)
    for name in list(shape.workers):
        shape.start_worker(name)
    jobs = _finish_jobs(shape, ids)
    wait_until(
        lambda: all(
            run["status"] in ("completed", "failed")
            for run in httpx.get(
                f"{api}/reports/schedules/{schedule['schedule_id']}/runs", headers=admin
            ).json()["data"]
        ),
        timeout=240,
        what="the missed slot's run",
    )
    runs = httpx.get(
        f"{api}/reports/schedules/{schedule['schedule_id']}/runs", headers=admin, timeout=60
    ).json()
    return {
        "fault": "api_restarted",
        "report_jobs": jobs,
        "missed_slot_runs": len(runs["data"]),
        "missed_slot_statuses": [run["status"] for run in runs["data"]],
    }


# --- entry point -----------------------------------------------------------------------------------------


def _ignore(_: object) -> None:
    return None


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("load", "soak", "faults"):
        each = sub.add_parser(command)
        each.add_argument("--lines", type=int, default=1_000_000)
        each.add_argument("--seconds", type=int, default=60)
        each.add_argument("--minutes", type=float, default=10.0)
        each.add_argument("--only", type=lambda text: set(text.split(",")), default=None)
    standin = sub.add_parser("standin")  # the stand-in's own process (started by the others)
    standin.add_argument("store")
    standin.add_argument("port", type=int)
    args = parser.parse_args()
    if args.command == "standin":
        serve_standin(args.store, args.port)
        return
    with production_shape(args.lines) as shape:
        if args.command == "load":
            run_load(shape, args.seconds)
        elif args.command == "soak":
            run_soak(shape, args.minutes)
        else:
            run_faults(shape, args.only)


if __name__ == "__main__":
    main()
