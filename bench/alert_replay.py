"""Replay a real shop (UCI Online Retail) day by day over its last trading days, with the alert schedule and
the daily demand batch running as in production, and count what a manager would find wrong.

    .venv/bin/python -m bench.alert_replay [--days 60] [--checks 06:00,09:00,13:00,18:00] [--batch proxy]
        [--last-day 2011-12-09] [--min-share 1.0]

`--last-day 2011-09-30` replays the 60 trading days before the reported window: the development split on
which `ALERT_ANOMALY_MIN_SHARE` was chosen (`--min-share`).

The shop: the real lines in the embedded store; stock starts at 45 days of each product's recent demand (20
units for products without recent sales), falls with each day's sales, and the manager orders what the
09:00 check suggests (arriving after the lead time) and acknowledges every open alert after reading the
digest. Each day the demand batch lands at `--batch-at` (between the checks): `proxy` writes an
exponentially weighted mean of each product's last 56 days as the batch (cheap, and unlike the 28-day rate,
as a forecast is); `forecast` runs the real batch (about 4 minutes a day for 3,600 products on 2 cores).

Printed per day: alerts opened/updated/resolved by kind, flips (an alert resolved and opened again, or its
severity moving down then up or up then down, within one day: nothing in the sales or stock changed between
those checks), stock alerts that changed at all between two checks of a day (stock and demand are the same
all day), acknowledged alerts reopened without getting worse than when acknowledged, e-mails and their
sizes. Then the totals, the first evaluation's e-mail size, and product sales-anomaly alerts per day.
Targets (issue 18): 0 flips, 0 reopened acknowledgements, product anomaly alerts ≤ 5 a trading day, every
e-mail ≤ 200 KB. `--baseline` first replays the same days with the demand switched when the batch lands (the
policy before) and every product anomaly an alert.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tests.builders import RETAIL_LAST_DAY, MovableClock, load_retail_store, read_retail_lines

from bench.common import bench_settings, emit
from salesflow.config import Settings
from salesflow.models.alerts import SEVERITY_RANK, AlertFilters, AlertKind, AlertState
from salesflow.resources import Resources, open_resources
from salesflow.services.analytics.demand import SettledDemand
from salesflow.state.alerts import Changes
from salesflow.state.tables import Alert

BATCH_HALF_LIFE_DAYS = 14.0


def initial_stock(raw: pd.DataFrame, first_day: date) -> pd.Series:
    """45 days of each product's mean daily units over the 90 days before the replay (20 without sales)."""
    day = raw["InvoiceDate"].dt.normalize()
    recent = raw[(day >= pd.Timestamp(first_day - timedelta(days=90))) & (day < pd.Timestamp(first_day))]
    demand = recent.groupby("product_id")["Quantity"].sum() / 90
    stock = pd.Series(20, index=pd.Index(sorted(raw["product_id"].unique()), name="product_id"))
    stock.loc[demand.index] = np.ceil(demand * 45).astype(int)
    return stock


def proxy_batch(raw: pd.DataFrame, day: date) -> dict[int, float]:
    """A forecast-like demand per product: an exponentially weighted mean of its last 56 days."""
    first = day - timedelta(days=56)
    days = raw["InvoiceDate"].dt.normalize()
    window = raw[(days >= pd.Timestamp(first)) & (days < pd.Timestamp(day))]
    per_day = window.groupby([window["InvoiceDate"].dt.normalize(), "product_id"])["Quantity"].sum()
    matrix = per_day.unstack(fill_value=0).reindex(
        pd.date_range(first, day - timedelta(days=1)), fill_value=0
    )
    age = np.arange(len(matrix))[::-1]
    weights = 0.5 ** (age / BATCH_HALF_LIFE_DAYS)
    means = (matrix.to_numpy() * weights[:, None]).sum(axis=0) / weights.sum()
    return {int(pid): float(v) for pid, v in zip(matrix.columns, means, strict=True)}


class Replay:
    def __init__(self, resources: Resources, clock: MovableClock, raw: pd.DataFrame, *, batch: str) -> None:
        self.resources = resources
        self.clock = clock
        self.raw = raw
        self.batch = batch
        self.lead_days = resources.settings.analytics.reorder_lead_days
        self.arrivals: dict[date, Counter[int]] = defaultdict(Counter)
        self.sold = raw.groupby([raw["InvoiceDate"].dt.date, "product_id"])["Quantity"].sum()
        self.seen: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (kind, subject) → [(state, severity)]

    def set_stock(self, stock: pd.Series) -> None:
        assert self.resources.store is not None
        cursor = self.resources.store.cursor()
        cursor.execute("CREATE OR REPLACE TEMP TABLE replay_stock (id INTEGER, stock INTEGER)")
        cursor.executemany(
            "INSERT INTO replay_stock VALUES (?, ?)",
            list(zip(stock.index.tolist(), stock.astype(int).tolist(), strict=True)),
        )
        cursor.execute(
            "UPDATE products SET stock_quantity = replay_stock.stock FROM replay_stock"
            " WHERE products.id = replay_stock.id"
        )
        self.resources.lines.invalidate()

    async def check(self, day: date, at: clock_time) -> tuple[Changes, float]:
        self.clock.now = datetime.combine(day, at, tzinfo=UTC)
        self.resources.lines.invalidate()
        started = time.perf_counter()
        changes = await self.resources.alerts.check_now()
        return changes, time.perf_counter() - started

    async def land_batch(self, day: date, at: clock_time) -> None:
        self.clock.now = datetime.combine(day, at, tzinfo=UTC)
        if self.batch == "forecast":
            await self.resources.demand_forecasts.refresh()
        else:
            await self.resources.demand_forecasts.batches.save(day, proxy_batch(self.raw, day))

    async def unresolved(self) -> list[Alert]:
        alerts: list[Alert] = []
        for state in (AlertState.OPEN, AlertState.ACKNOWLEDGED):
            offset = 0
            while True:
                page, total = await self.resources.alerts.alerts.page(
                    AlertFilters(state=state), offset=offset, limit=1000
                )
                alerts += page
                offset += len(page)
                if offset >= total or not page:
                    break
        return alerts

    async def order_and_acknowledge(self, day: date) -> int:
        """The manager orders what the alerts suggest and acknowledges every open alert."""
        ordered = 0
        for alert in await self.unresolved():
            quantity = alert.numbers.get("suggested_order_qty")
            if alert.product_id is not None and isinstance(quantity, int) and quantity > 0:
                pending = sum(c[alert.product_id] for d, c in self.arrivals.items() if d > day)
                if not pending:
                    self.arrivals[day + timedelta(days=self.lead_days)][alert.product_id] += quantity
                    ordered += 1
            if alert.state == AlertState.OPEN:
                await self.resources.alerts.acknowledge(alert.id, by="manager")
        return ordered


def flips_within(day_states: list[dict[tuple[str, str], str | None]]) -> int:
    """Alerts resolved then open again, or whose severity went down then up (or up then down), within a day:
    with each check's {(kind, subject): severity or None}."""
    flips = 0
    keys = set().union(*day_states) if day_states else set()
    for key in keys:
        path = [states.get(key) for states in day_states]
        ranks = [SEVERITY_RANK[s] if s else 0 for s in path]
        moves = [np.sign(b - a) for a, b in itertools.pairwise(ranks) if b != a]
        flips += sum(1 for a, b in itertools.pairwise(moves) if a != b)
    return flips


STOCK_KINDS = {AlertKind.OUT_OF_STOCK, AlertKind.LOW_STOCK, AlertKind.URGENT_REORDER}


def stock_changes_within(day_states: list[dict[tuple[str, str], str | None]]) -> int:
    """Stock alerts opened, resolved or changing severity between two checks of one day: stock and demand do
    not change within a replayed day, so each is a change without a cause."""
    changes = 0
    for before, after in itertools.pairwise(day_states):
        keys = {k for k in set(before) | set(after) if k[0] in STOCK_KINDS}
        changes += sum(before.get(k) != after.get(k) for k in keys)
    return changes


def switch_on_landing(resources: Resources, clock: MovableClock) -> None:
    """The baseline's demand policy (before issue 18): the newest batch as soon as it lands, the rate
    until then, so a day's checks before and after the batch read different demand."""
    batches = resources.demand_forecasts.batches

    async def newest(as_of: date) -> SettledDemand | None:
        found = await batches.newest_before(clock.now + timedelta(seconds=1), oldest=as_of)
        return SettledDemand(basis=found[0], figures=found[1]) if found else None

    resources.demand_forecasts.daily_demand = newest  # type: ignore[method-assign]  # the baseline only


async def replay(folder: Path, args: argparse.Namespace, *, baseline: bool = False) -> dict[str, Any]:
    raw = read_retail_lines()
    trading_days = sorted({d.date() for d in raw["InvoiceDate"].dt.normalize().unique()})
    days = [d for d in trading_days if d <= args.last_day][-args.days :]
    checks = [clock_time.fromisoformat(t) for t in args.checks.split(",")]
    batch_at = clock_time.fromisoformat(args.batch_at)
    raw = load_retail_store(folder / "salesflow.duckdb", raw)
    clock = MovableClock(datetime.combine(days[0], checks[0], tzinfo=UTC))
    settings = bench_settings(
        folder,
        alert_recipients=["manager@shop.test"],
        shop_country="GB",
        sales_refresh_seconds=0,
        analytics_max_window_days=400,
        alert_anomaly_min_share=0.0 if baseline else args.min_share,
    )
    async with open_resources(settings, clock=clock) as resources:
        if baseline:
            switch_on_landing(resources, clock)
        run = Replay(resources, clock, raw, batch=args.batch)
        stock = initial_stock(raw, days[0])
        totals: Counter[str] = Counter()
        mail_sizes: list[int] = []
        first_mail_kb: float | None = None
        check_seconds: list[float] = []
        anomaly_per_day: list[int] = []
        reopened_without_worsening = 0
        acknowledged_at: dict[str, str] = {}
        previous = days[0] - timedelta(days=1)
        for day in days:
            for gap in range(1, (day - previous).days + 1):  # sales of the days since the last trading day
                moment = previous + timedelta(days=gap - 1)
                if moment >= days[0]:
                    sold = run.sold.get(moment)
                    if sold is not None:
                        stock = stock.sub(sold.reindex(stock.index, fill_value=0)).clip(lower=0)
                arrived = run.arrivals.pop(moment + timedelta(days=1), Counter())
                if arrived:
                    stock = stock.add(pd.Series(arrived, dtype="int64"), fill_value=0).astype("int64")
            previous = day
            run.set_stock(stock)
            opened: Counter[str] = Counter()
            day_states: list[dict[tuple[str, str], str | None]] = []
            product_anomalies: set[str] = set()
            batch_landed = False
            for at in checks:
                if not batch_landed and at >= batch_at:
                    await run.land_batch(day, batch_at)
                    batch_landed = True
                changes, seconds = await run.check(day, at)
                check_seconds.append(seconds)
                for alert in changes.opened:
                    opened[str(alert.kind)] += 1
                    if alert.kind == AlertKind.SALES_ANOMALY and alert.product_id is not None:
                        product_anomalies.add(alert.subject)
                totals["opened"] += len(changes.opened)
                totals["updated"] += len(changes.updated)
                totals["resolved"] += len(changes.resolved)
                for alert in changes.updated:
                    before = acknowledged_at.get(alert.id)
                    if (
                        before
                        and alert.state == AlertState.OPEN
                        and (SEVERITY_RANK[alert.severity] <= SEVERITY_RANK[before])
                    ):
                        reopened_without_worsening += 1
                unresolved = await run.unresolved()
                day_states.append({(a.kind, a.subject): a.severity for a in unresolved})
                sent = await resources.notifications.deliver_due()
                if sent:
                    for eml in sorted(settings.mail.outbox_dir.iterdir(), key=lambda p: p.stat().st_mtime):
                        size = eml.stat().st_size
                        if first_mail_kb is None:
                            first_mail_kb = size / 1024
                        mail_sizes.append(size)
                        eml.unlink()
                if at.hour == 9:
                    totals["orders"] += await run.order_and_acknowledge(day)
                    for alert in await run.unresolved():
                        if alert.state == AlertState.ACKNOWLEDGED:
                            acknowledged_at.setdefault(
                                alert.id, alert.acknowledged_severity or alert.severity
                            )
            flips = flips_within(day_states)
            totals["flips"] += flips
            totals["stock_changes_within_a_day"] += stock_changes_within(day_states)
            anomaly_per_day.append(len(product_anomalies))
            sys.stdout.write(
                f"{day} opened {dict(opened)} flips {flips} product anomalies {len(product_anomalies)}"
                f" open {len(day_states[-1])}\n"
            )
            sys.stdout.flush()
    return {
        "first_day": days[0].isoformat(),
        "last_day": days[-1].isoformat(),
        "min_share": settings.alerts.anomaly_min_share,
        "days": len(days),
        "checks_a_day": len(checks),
        "batch": args.batch,
        **totals,
        "reopened_acknowledged_without_worsening": reopened_without_worsening,
        "product_anomaly_alerts_per_day": round(float(np.mean(anomaly_per_day)), 2),
        "emails": len(mail_sizes),
        "email_kb_max": round(max(mail_sizes, default=0) / 1024, 1),
        "first_email_kb": round(first_mail_kb or 0.0, 1),
        "check_seconds_median": round(float(np.median(check_seconds)), 2),
        "check_seconds_max": round(max(check_seconds), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--checks", default="06:00,09:00,13:00,18:00")
    parser.add_argument("--batch-at", default="07:30")
    parser.add_argument("--batch", choices=["proxy", "forecast"], default="proxy")
    parser.add_argument("--last-day", type=date.fromisoformat, default=RETAIL_LAST_DAY)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="first replay the same days as before issue 18: demand switched when the batch lands, every"
        " product anomaly an alert (ALERT_ANOMALY_MIN_SHARE=0)",
    )
    parser.add_argument(
        "--min-share",
        type=float,
        default=Settings.model_fields["alert_anomaly_min_share"].default,
        help="ALERT_ANOMALY_MIN_SHARE (default: the service's)",
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    if args.baseline:
        with tempfile.TemporaryDirectory() as folder:
            figures["baseline"] = asyncio.run(replay(Path(folder), args, baseline=True))
    with tempfile.TemporaryDirectory() as folder:
        figures |= asyncio.run(replay(Path(folder), args))
    emit("alert_replay", figures)


if __name__ == "__main__":
    main()
