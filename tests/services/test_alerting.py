"""The alerting pipeline on the demo store, a real state database (SQLite and PostgreSQL) and a real SMTP
server on loopback: each alert opened once, escalated, resolved and reopened; one digest per evaluation,
delivered exactly once even when SMTP is down at first."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime, time, timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from salesflow.config import Settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.formatting import Formats
from salesflow.models.alerts import AlertFilters, AlertKind, AlertState
from salesflow.resources import Resources, open_resources
from salesflow.services.alerting.pipeline import SCHEDULED
from salesflow.state.tables import Alert, AlertCheck
from tests.builders import TODAY, MovableClock
from tests.servers import free_port

BOSS = "boss@shop.test"


def mailing(
    make_settings: Callable[..., Settings], smtp: tuple[int, list[Message]], **overrides: object
) -> Settings:
    """DEV settings that mail the alert digests to BOSS through the loopback SMTP server."""
    return make_settings(
        dev_mode=True,
        java_jwt_secret=None,
        smtp_host="127.0.0.1",
        smtp_port=smtp[0],
        smtp_starttls=False,
        alert_recipients=[BOSS],
        **overrides,
    )


@pytest.fixture
async def alerting(
    make_settings: Callable[..., Settings], store_file: Path, smtp: tuple[int, list[Message]], state_url: str
) -> AsyncIterator[tuple[Resources, MovableClock]]:
    clock = MovableClock()
    settings = mailing(
        make_settings,
        smtp,
        state_database_url=state_url,
        sales_refresh_seconds=0,  # stock changed in the store is seen at once
    )
    async with open_resources(settings, clock=clock) as built:
        yield built, clock


async def unresolved(resources: Resources) -> list[Alert]:
    alerts: list[Alert] = []
    for state in (AlertState.OPEN, AlertState.ACKNOWLEDGED):
        page, _ = await resources.alerts.alerts.page(AlertFilters(state=state), offset=0, limit=1000)
        alerts += page
    return alerts


def set_stock(resources: Resources, product_id: int, stock: int) -> None:
    assert resources.store is not None
    resources.store.cursor().execute(
        "UPDATE products SET stock_quantity = ? WHERE id = ?", [stock, product_id]
    )


async def selling_product(resources: Resources) -> tuple[int, int]:
    """A product that sells (so plenty of stock is no alert at all) and its low-stock threshold, below which
    it is due for an order (a low stock with nothing to order is no alert)."""
    states = await resources.stock_analytics.product_states(TODAY)
    row = states[
        (states["daily_demand"] > 0)
        & (states["min_stock"] >= 8)
        & (states["reorder_point"] >= states["min_stock"])
        & (states["status"] != "DEAD_STOCK")
    ]
    return int(row["product_id"].iloc[0]), int(row["min_stock"].iloc[0])


async def test_an_evaluation_opens_each_alert_once_and_mails_one_digest(
    alerting: tuple[Resources, MovableClock], smtp: tuple[int, list[Message]]
) -> None:
    resources, _ = alerting
    first = await resources.alerts.check_now()
    kinds = Counter(a.kind for a in first.opened)
    assert kinds[AlertKind.OUT_OF_STOCK] and kinds[AlertKind.LOW_STOCK], kinds
    assert len({(a.kind, a.subject) for a in first.opened}) == len(first.opened)
    assert first.digest_mail_id is not None
    again = await resources.alerts.check_now()
    assert again.opened == [] and again.resolved == [] and again.digest_mail_id is None
    assert len(await unresolved(resources)) == len(first.opened)

    assert await resources.notifications.deliver_due() == 1
    assert await resources.notifications.deliver_due() == 0
    _, received = smtp
    [mail] = received
    assert mail["To"] == BOSS
    # The shop's first evaluation: a baseline summary.
    assert mail["Subject"].startswith(f"SalesFlow: your shop at a glance, {len(first.opened)} alerts (")
    assert parsedate_to_datetime(mail["Date"]) == first.opened[0].first_seen  # queued then (pinned clock)
    assert f".{first.digest_mail_id}@salesflow.local>" in mail["Message-ID"]
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert isinstance(text, bytes) and isinstance(html, bytes)
    out_of_stock = next(a for a in first.opened if a.kind == AlertKind.OUT_OF_STOCK)
    assert out_of_stock.message in text.decode()
    assert out_of_stock.message.replace("&", "&amp;") in html.decode()
    # A table a kind (its header, then a row per alert: fewer than 10 of each here).
    assert html.decode().count("<tr>") == len(first.opened) + len(kinds)
    assert (
        text.decode().index("SUMMARY")
        < text.decode().index("TO DO TODAY")
        < text.decode().index(out_of_stock.message)
    )


async def test_escalation_resolution_and_recurrence(
    alerting: tuple[Resources, MovableClock], smtp: tuple[int, list[Message]]
) -> None:
    resources, clock = alerting
    product_id, threshold = await selling_product(resources)
    subject = f"product:{product_id}"
    set_stock(resources, product_id, threshold - 1)  # just below its threshold: LOW_STOCK, low
    await resources.alerts.check_now()
    [low] = [a for a in await unresolved(resources) if a.subject == subject]
    assert (low.kind, low.severity) == (AlertKind.LOW_STOCK, "low")

    set_stock(resources, product_id, threshold // 4)  # a quarter of it: worse, the same alert
    clock.now += timedelta(minutes=15)
    worse = await resources.alerts.check_now()
    [updated] = [a for a in worse.updated if a.subject == subject]
    assert (updated.id, updated.severity) == (low.id, "high")
    assert worse.digest_mail_id is not None and updated.mail_id == worse.digest_mail_id

    set_stock(resources, product_id, threshold - 1)  # better again: updated, not mailed
    better = await resources.alerts.check_now()
    assert [a.severity for a in better.updated if a.subject == subject] == ["low"]
    assert better.digest_mail_id is None
    set_stock(resources, product_id, threshold // 4)  # back to what was mailed: not mailed twice
    assert (await resources.alerts.check_now()).digest_mail_id is None

    set_stock(resources, product_id, threshold * 100)  # cleared: resolved
    cleared = await resources.alerts.check_now()
    assert [a.id for a in cleared.resolved if a.subject == subject] == [low.id]
    set_stock(resources, product_id, 0)  # recurs: a new alert, of the kind it is now
    recurred = await resources.alerts.check_now()
    [again] = [a for a in recurred.opened if a.subject == subject]
    assert again.id != low.id and again.kind == AlertKind.OUT_OF_STOCK
    assert recurred.digest_mail_id is not None

    await resources.notifications.deliver_due()
    subjects = [m["Subject"] for m in smtp[1]]
    assert len(subjects) == 3 and "1 worse" in subjects[1] and "1 new" in subjects[2]


async def test_an_acknowledged_alert_is_mailed_again_only_when_it_worsens(
    alerting: tuple[Resources, MovableClock],
) -> None:
    resources, _ = alerting
    product_id, threshold = await selling_product(resources)
    set_stock(resources, product_id, threshold - 1)
    opened = await resources.alerts.check_now()
    [alert] = [a for a in opened.opened if a.subject == f"product:{product_id}"]
    acknowledged = await resources.alerts.acknowledge(alert.id, by="boss")
    assert acknowledged.state == AlertState.ACKNOWLEDGED and acknowledged.acknowledged_by == "boss"
    assert (await resources.alerts.check_now()).digest_mail_id is None  # still there, still acknowledged
    assert (await resources.alerts.alerts.get(alert.id)).state == AlertState.ACKNOWLEDGED  # type: ignore[union-attr]
    set_stock(resources, product_id, threshold // 4)  # the same kind, worse: open again, and mailed
    worse = await resources.alerts.check_now()
    [reopened] = [a for a in worse.updated if a.id == alert.id]
    assert reopened.state == AlertState.OPEN and worse.digest_mail_id is not None


async def test_two_evaluations_at_once_create_no_duplicate(alerting: tuple[Resources, MovableClock]) -> None:
    resources, _ = alerting
    one, two = await asyncio.gather(resources.alerts.check_now(), resources.alerts.check_now())
    opened = [(a.kind, a.subject) for a in one.opened + two.opened]
    assert len(opened) == len(set(opened)) > 0
    assert sorted(opened) == sorted((a.kind, a.subject) for a in await unresolved(resources))
    digests = [c.digest_mail_id for c in (one, two) if c.digest_mail_id]
    assert len(digests) == 1  # the second found everything opened and mailed by the first
    assert len(await resources.notifications.outbox.all()) == 1


async def test_a_scheduled_slot_is_evaluated_once(alerting: tuple[Resources, MovableClock]) -> None:
    resources, clock = alerting
    slot = clock.now.replace(minute=0, second=0, microsecond=0)
    assert await resources.alerts.check(trigger=SCHEDULED, slot=slot) is not None
    assert await resources.alerts.check(trigger=SCHEDULED, slot=slot) is None  # another process fired it
    last = await resources.alerts.alerts.last_check()
    assert last is not None and last.finished_at is not None and last.opened > 0


async def test_smtp_down_at_first_then_the_digest_is_delivered_once(
    alerting: tuple[Resources, MovableClock], smtp: tuple[int, list[Message]]
) -> None:
    resources, clock = alerting
    port, received = smtp
    notifier = resources.notifications.notifier
    notifier.port = free_port()  # type: ignore[attr-defined]  # nobody listens there
    checked = await resources.alerts.check_now()
    for _ in range(3):  # three failed tries, each after its backoff
        assert await resources.notifications.deliver_due() == 0
        clock.now += timedelta(hours=1)
    [row] = await resources.notifications.outbox.all()
    assert row.status == "pending" and row.attempts == 3 and row.last_error
    shown = await resources.alerts.shaped(checked.opened)  # what GET /alerts shows on each alert
    assert {(a.notification.status, a.notification.attempts) for a in shown if a.notification} == {
        ("pending", 3)
    }
    assert all(a.notification and "Error" in (a.notification.last_error or "") for a in shown)
    with pytest.raises(Exception, match="not delivered") as failing:
        await resources.notifications.check()  # what /health/ready shows, as `degraded`
    assert row.id in str(failing.value)
    notifier.port = port  # type: ignore[attr-defined]
    assert await resources.notifications.deliver_due() == 1
    assert await resources.notifications.deliver_due() == 0
    assert len(received) == 1
    assert (await resources.alerts.alerts.mails([checked.digest_mail_id or ""]))[row.id].status == "sent"
    await resources.notifications.check()  # delivered: readiness is clean again


async def test_without_smtp_host_the_digest_is_an_eml_file(
    make_settings: Callable[..., Settings], store_file: Path, tmp_path: Path
) -> None:
    settings = make_settings(dev_mode=True, java_jwt_secret=None, alert_recipients=[BOSS])
    async with open_resources(settings, clock=MovableClock()) as resources:
        checked = await resources.alerts.check_now()
        assert await resources.notifications.deliver_due() == 1
    [eml] = list(settings.mail.outbox_dir.iterdir())
    assert (
        eml.name == f"{checked.digest_mail_id}.eml" and b"Subject: SalesFlow: your shop" in eml.read_bytes()
    )


async def test_nothing_is_mailed_without_recipients(
    make_settings: Callable[..., Settings], store_file: Path
) -> None:
    async with open_resources(
        make_settings(dev_mode=True, java_jwt_secret=None), clock=MovableClock()
    ) as resources:
        checked = await resources.alerts.check_now()
        assert checked.opened and checked.digest_mail_id is None
        assert await resources.notifications.outbox.all() == []


async def test_the_demo_shops_injected_anomalies_become_alerts_with_true_explanations(
    make_settings: Callable[..., Settings], store_file: Path
) -> None:
    store = EmbeddedStore(store_file)
    events = (
        store.cursor().execute("SELECT day, kind FROM demo_events WHERE product_id = -1 ORDER BY day").df()
    )
    store.close()
    clock = MovableClock()
    async with open_resources(make_settings(dev_mode=True, java_jwt_secret=None), clock=clock) as resources:
        for day, kind in zip(events["day"], events["kind"], strict=True):
            injected = day.date() if hasattr(day, "date") else day
            # Judged the next morning, as "yesterday", on the days before it only.
            clock.now = datetime.combine(injected + timedelta(days=1), time(8), tzinfo=clock.now.tzinfo)
            await resources.alerts.check_now()
            [shop] = [a for a in await unresolved(resources) if a.subject == "global"]
            assert shop.kind == AlertKind.SALES_ANOMALY
            assert shop.numbers["day"] == injected.isoformat()
            # A drop sized to stand out of the noise may leave nothing sold: then it is called a zero day.
            assert shop.numbers["type"] in ({kind} if kind == "HIGH_SPIKE" else {"DROP", "ZERO_DROP"})
            assert shop.message.startswith("The whole shop: ")
            assert injected.strftime("%A %Y-%m-%d") in shop.message
            observed, expected = float(shop.numbers["observed"]), float(shop.numbers["expected"])  # type: ignore[arg-type]
            assert f"{observed:.0f}" in shop.message and f"{expected:.0f}" in shop.message
            if kind == "HIGH_SPIKE":
                assert observed > 2 * expected
            else:
                assert observed < 0.5 * expected
        # A week with no injected event: the shop's alert resolves and none opens.
        quiet = TODAY + timedelta(days=1)
        assert all((quiet - e.date() if hasattr(e, "date") else quiet - e).days > 8 for e in events["day"])
        clock.now = datetime.combine(quiet, time(8), tzinfo=clock.now.tzinfo)
        await resources.alerts.check_now()
        assert [a for a in await unresolved(resources) if a.subject == "global"] == []


def test_clean_sales_give_no_anomaly_alert() -> None:
    """A year of ordinary Poisson sales for a shop of 60 products (with a weekly rhythm, some slow sellers)
    opens no sales-anomaly alert over its last week, at either level."""
    import numpy as np
    import pandas as pd

    from salesflow.services.alerting.rules import anomaly_conditions
    from salesflow.services.ml.anomalies import AnomalyRules

    rng = np.random.default_rng(5)
    first = TODAY - timedelta(days=365)
    days = pd.date_range(first, TODAY - timedelta(days=1), freq="D")
    week = np.array([0.85, 0.9, 0.95, 1.0, 1.2, 1.45, 0.65])[days.day_of_week]
    frames = []
    for product_id, level in enumerate(rng.gamma(1.0, 4.0, size=60), start=1):
        units = rng.poisson(level * week)
        sold = units > 0
        frames.append(
            pd.DataFrame(
                {
                    "day": days[sold].astype("datetime64[s]"),
                    "product_id": product_id,
                    "quantity": units[sold],
                    "subtotal": units[sold] * 2.5,
                }
            )
        )
    lines = pd.concat(frames, ignore_index=True)
    states = pd.DataFrame(  # every product judged: all class A
        {
            "product_id": range(1, 61),
            "sku": [f"S-{i}" for i in range(1, 61)],
            "name": "x",
            "status": "OK",
            "coverage_days": 30.0,
            "abc_class": "A",
            "unit_price": 2.5,
        }
    )
    conditions = anomaly_conditions(
        lines, states, today=TODAY, first_day=first, rules=AnomalyRules(), recent_days=7, min_share=0.0
    )
    assert conditions == []


async def test_a_kind_below_its_minimum_severity_is_not_mailed(
    make_settings: Callable[..., Settings], store_file: Path, smtp: tuple[int, list[Message]]
) -> None:
    settings = mailing(make_settings, smtp, alert_email_min_severity="DEAD_STOCK=high,LOW_STOCK=medium")
    async with open_resources(settings, clock=MovableClock()) as resources:
        checked = await resources.alerts.check_now()
        mailed = {a.id for a in checked.opened if a.mail_id}
        for alert in checked.opened:
            quiet = alert.kind == AlertKind.DEAD_STOCK or (
                alert.kind == AlertKind.LOW_STOCK and alert.severity == "low"
            )
            assert (alert.id not in mailed) == quiet, (alert.kind, alert.severity)
        assert any(a.kind == AlertKind.DEAD_STOCK for a in checked.opened)
        await resources.notifications.deliver_due()
    [mail] = smtp[1]
    assert "Dead stock" not in str(mail), str(mail)
    assert f"{len(mailed)} alerts" in mail["Subject"]


async def test_the_cron_firing_enqueues_one_check_per_slot_whoever_fires(
    alerting: tuple[Resources, MovableClock],
) -> None:
    """Two scheduling processes fire the same cron slot (here: the same runner's firing, twice); the job
    runtime runs the check, and the slot is evaluated once."""
    from salesflow.background import alert_checks
    from salesflow.jobs.scheduler import ScheduleRunner

    resources, _ = alerting
    runner = ScheduleRunner(resources.schedules, sync_seconds=30, grace_seconds=3600)
    periodic = alert_checks(resources)
    await runner._fire_periodic(periodic)
    await runner._fire_periodic(periodic)

    with anyio.fail_after(60):  # the in-memory broker runs both checks; wait for them to end
        await resources.jobs.broker.wait_all()  # type: ignore[attr-defined]
    async with resources.state.session() as session:
        checks = list(await session.scalars(select(AlertCheck)))
    [check] = checks  # the second firing found its slot taken
    assert check.trigger == SCHEDULED and check.slot is not None and check.finished_at is not None
    assert check.slot.minute % 15 == 0  # ALERT_CHECK_CRON's default: every 15 minutes
    assert len(await unresolved(resources)) == check.opened > 0


def test_the_digest_escapes_what_users_named() -> None:
    from datetime import UTC

    from salesflow.services.alerting.digest import build_digest

    now = datetime(2026, 3, 18, 9, 0, tzinfo=UTC)
    hostile = Alert(
        id="c" * 32,
        kind=AlertKind.OUT_OF_STOCK,
        subject="product:7",
        severity="high",
        state=AlertState.OPEN,
        message='<script>alert(1)</script> "Sale" & co (X-1) is out of stock.',
        numbers={"current_stock": 0},
        notified_severity=None,
        at_stake=12.5,
    )
    mail = build_digest([hostile], recipients=[BOSS], now=now, zone=UTC, formats=Formats("GBP"))
    assert mail is not None and mail.html is not None
    assert "<script>" not in mail.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert hostile.message in mail.body and mail.subject == "SalesFlow alerts: 1 new (1 high)"
    assert "£12.50" in mail.body
    assert build_digest([hostile], recipients=[], now=now, zone=UTC, formats=Formats()) is None
