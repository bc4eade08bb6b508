"""What the alerts tell a manager: ranked by the money at stake, stable on noise (hysteresis), reopened only
when worse than what was acknowledged, never-sold products in one line, digests that stay small whatever
the shop, and a morning-digest cadence. On a real state database (SQLite and PostgreSQL) and SMTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, time, timedelta
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from salesflow.clients.mail.notifier import Mail
from salesflow.config import ConfigurationError, Settings, load_settings
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.formatting import Formats
from salesflow.models.alerts import AlertFilters, AlertKind, AlertState
from salesflow.resources import Resources, open_resources
from salesflow.services.alerting.digest import build_digest
from salesflow.services.alerting.rules import HYSTERESIS, NEVER_SOLD, stock_conditions
from salesflow.services.analytics.demand import DemandRule
from salesflow.services.analytics.stock import OVER_A_YEAR, describe_coverage, product_states
from salesflow.state.alerts import Condition
from salesflow.state.tables import Alert
from tests.builders import TODAY, MovableClock, pinned_clock
from tests.services.test_alerting import BOSS, mailing

RULE = DemandRule()


@pytest.fixture
async def service(
    make_settings: Callable[..., Settings], store_file: Path, smtp: tuple[int, list[Message]], state_url: str
) -> AsyncIterator[tuple[Resources, MovableClock]]:
    clock = MovableClock()
    settings = mailing(make_settings, smtp, state_database_url=state_url, shop_country="GB")
    async with open_resources(settings, clock=clock) as built:
        yield built, clock


def condition(
    severity: str, sticky: str | None = None, *, subject: str = "product:1", stake: float = 10.0
) -> Condition:
    return Condition(
        kind=AlertKind.URGENT_REORDER,
        subject=subject,
        severity=severity,
        message=f"{subject} {severity}",
        numbers={"coverage_days": 1.0},
        product_id=int(subject.split(":")[1]),
        at_stake=stake,
        sticky_severity=sticky,
    )


async def reconcile(resources: Resources, *conditions: Condition) -> list[Alert]:
    alerts = resources.alerts.alerts
    await alerts.reconcile(
        list(conditions), kinds=[AlertKind.URGENT_REORDER], digest=lambda *_: None, notify_from={}
    )
    page, _ = await alerts.page(AlertFilters(), offset=0, limit=100)
    return [a for a in page if a.state != AlertState.RESOLVED]


async def test_severity_eases_only_past_the_hysteresis_band(service: tuple[Resources, MovableClock]) -> None:
    resources, _ = service
    [alert] = await reconcile(resources, condition("high"))
    # Just past the boundary (the widened band still says high): it stays high, whatever the noise.
    for _ in range(3):
        [alert] = await reconcile(resources, condition("medium", sticky="high"))
        assert alert.severity == "high"
    [alert] = await reconcile(resources, condition("medium", sticky="medium"))  # clear of the band
    assert alert.severity == "medium"
    [alert] = await reconcile(resources, condition("high", sticky="high"))  # worse: at once
    assert alert.severity == "high"


async def test_a_hold_only_condition_keeps_an_alert_open_and_opens_none(
    service: tuple[Resources, MovableClock],
) -> None:
    resources, _ = service
    near = Condition(**{**condition("low").__dict__, "hold_only": True})  # just past the lead time
    assert await reconcile(resources, near) == []
    [opened] = await reconcile(resources, condition("low"))
    [kept] = await reconcile(resources, near)
    assert kept.id == opened.id
    assert await reconcile(resources) == []  # clear of the band: resolved


async def test_an_acknowledged_alert_reopens_only_above_the_acknowledged_severity(
    service: tuple[Resources, MovableClock],
) -> None:
    resources, _ = service
    [alert] = await reconcile(resources, condition("high"))
    await resources.alerts.acknowledge(alert.id, by="boss")
    [eased] = await reconcile(resources, condition("medium"))
    assert (eased.severity, eased.state) == ("medium", AlertState.ACKNOWLEDGED)
    [back] = await reconcile(resources, condition("high"))  # back to what was acknowledged: not news
    assert (back.severity, back.state) == ("high", AlertState.ACKNOWLEDGED)


async def test_alerts_are_listed_by_money_at_stake(service: tuple[Resources, MovableClock]) -> None:
    resources, _ = service
    await reconcile(
        resources,
        condition("high", subject="product:1", stake=5.0),
        condition("low", subject="product:2", stake=500.0),
        condition("medium", subject="product:3", stake=50.0),
    )
    page, _ = await resources.alerts.alerts.page(AlertFilters(), offset=0, limit=10)
    assert [a.at_stake for a in page] == [500.0, 50.0, 5.0]


def states_of(stock: list[int], threshold: int, daily_units: list[float], price: float = 4.0) -> pd.DataFrame:
    """Stock states of products selling `daily_units` a day for 60 days (none: never sold)."""
    ids = np.arange(1, len(stock) + 1)
    products = pd.DataFrame(
        {
            "product_id": ids,
            "sku": [f"S-{i}" for i in ids],
            "name": [f"Product {i}" for i in ids],
            "stock_quantity": stock,
            "low_stock_threshold": threshold,
            "price": price,
        }
    )
    days = pd.date_range(TODAY - timedelta(days=60), TODAY - timedelta(days=1), freq="D")
    lines = pd.DataFrame(
        [
            {"day": day, "product_id": pid, "quantity": units, "subtotal": units * price}
            for pid, units in zip(ids, daily_units, strict=True)
            if units
            for day in days
        ],
        columns=["day", "product_id", "quantity", "subtotal"],
    )
    lines["day"] = lines["day"].astype("datetime64[s]")
    return product_states(products, lines, as_of=TODAY, rule=RULE, dead_stock_days=90)


def test_stock_conditions_rank_by_sales_at_risk_and_summarise_never_sold_products() -> None:
    # 1 out of stock and selling 3 a day; 2 low and due; 3 low but nobody buys it; 4..8 never sold.
    states = states_of([0, 2, 3, 50, 50, 50, 50, 50], 10, [3, 1, 0, 0, 0, 0, 0, 0])
    conditions = {
        c.subject: c for c in stock_conditions(states, rule=RULE, dead_stock_days=90, formats=Formats())
    }
    assert set(conditions) == {"product:1", "product:2", NEVER_SOLD}
    out = conditions["product:1"]
    assert (out.kind, out.severity, out.at_stake) == (AlertKind.OUT_OF_STOCK, "high", 3 * 21 * 4.0)
    assert out.numbers["lost_sales_per_day"] == 12.0
    low = conditions["product:2"]
    assert low.kind == AlertKind.LOW_STOCK and low.at_stake == (21 - 2) * 4.0
    never = conditions[NEVER_SOLD]
    assert never.kind == AlertKind.DEAD_STOCK and never.numbers["products"] == 5
    assert never.at_stake == 5 * 50 * 4.0 and never.product_id is None


def test_a_product_out_of_stock_that_nobody_buys_is_low_and_says_so() -> None:
    states = states_of([0, 5], 10, [0.0, 1.0])
    [out] = [
        c
        for c in stock_conditions(states, rule=RULE, dead_stock_days=90, formats=Formats())
        if c.subject == "product:1"
    ]
    assert (out.severity, out.at_stake) == ("low", 0.0) and "no recent demand" in out.message


def test_coverage_has_a_demand_floor_and_a_cap() -> None:
    # 1 sells 1/60 of a unit a day (below the floor: no recent demand); 2 sells 0.5 a day, 10,000 in stock.
    states = states_of([30, 10_000], 10, [1 / 60, 0.5])
    slow, plenty = states.iloc[0], states.iloc[1]
    assert slow["daily_demand"] == 0.0 and np.isnan(slow["coverage_days"])
    assert slow["reorder_point"] == 0 and slow["suggested_order_qty"] == 0
    assert plenty["coverage_days"] == OVER_A_YEAR
    assert describe_coverage(OVER_A_YEAR) == "over a year"
    assert describe_coverage(float("nan")) == "no recent demand"
    assert describe_coverage(6.998) == "6.9 days"  # never "7.0 days … less than the 7-day lead time"


def test_a_product_just_past_the_lead_time_keeps_its_open_alert_and_says_so() -> None:
    # 2 a day for 60 days, 15 in stock: 7.5 days against a 7-day lead time (within 25% of it).
    [held] = stock_conditions(states_of([15], 1, [2.0]), rule=RULE, dead_stock_days=90, formats=Formats())
    assert held.hold_only and held.kind == AlertKind.URGENT_REORDER
    assert "7.5 days at 2.0 units a day, only just over the 7-day lead time" in held.message


def test_the_stock_severity_band_is_widened_for_an_open_alert() -> None:
    # Coverage 2.5 days with a 7-day lead time: medium (≥ 7/3); within 25% of the high boundary.
    states = states_of([5], 1, [2.0])
    [urgent] = stock_conditions(states, rule=RULE, dead_stock_days=90, formats=Formats())
    assert urgent.kind == AlertKind.URGENT_REORDER and urgent.severity == "medium"
    assert 7 / 3 <= 2.5 < 7 / 3 * HYSTERESIS and urgent.sticky_severity == "high"


def digest_alert(index: int, kind: AlertKind) -> Alert:
    return Alert(
        id=f"{index:032d}",
        kind=kind,
        subject=f"product:{index}",
        product_id=index,
        product_sku=f"SKU-{index}",
        product_name="A very long product name " * 20,
        severity=("high", "medium", "low")[index % 3],
        state=AlertState.OPEN,
        message="x" * 5_000,
        numbers={"suggested_order_qty": index},
        notified_severity=None,
        at_stake=float(index),
    )


def test_a_digest_stays_small_whatever_the_shop() -> None:
    alerts = [digest_alert(i, kind) for kind in AlertKind for i in range(1, 1_500)]
    mail = build_digest(
        alerts,
        recipients=[BOSS],
        now=pinned_clock(),
        zone=ZoneInfo("UTC"),
        formats=Formats("EUR"),
        first=True,
    )
    assert mail is not None and mail.html is not None
    size = len(mail.body.encode()) + len(mail.html.encode())
    assert size < 200_000, size
    assert mail.body.startswith("Alerts checked at") and mail.body.index("SUMMARY") < mail.body.index(
        "TO DO TODAY"
    )
    assert (
        "Order 1,499 of" in mail.body and "€1,499.00 of sales at risk" in mail.body
    )  # the most at stake first
    assert "and 1,489 more out of stock alerts" in mail.body


async def test_a_morning_digest_and_high_severity_at_once(
    make_settings: Callable[..., Settings], store_file: Path, smtp: tuple[int, list[Message]]
) -> None:
    clock = MovableClock(datetime.combine(TODAY, time(6, 0), tzinfo=ZoneInfo("UTC")))
    settings = mailing(make_settings, smtp, alert_digest_hour=8)
    async with open_resources(settings, clock=clock) as resources:
        early = await resources.alerts.check_now()  # 06:00: only what is high is mailed now
        mailed_early = [a for a in early.opened if a.mail_id]
        assert mailed_early and {a.severity for a in mailed_early} == {"high"}
        assert any(a.severity != "high" for a in early.opened)
        clock.now = clock.now.replace(hour=8, minute=15)
        morning = await resources.alerts.check_now()
        assert morning.digest_mail_id is not None  # the rest, in the morning digest
        clock.now += timedelta(minutes=15)
        assert (await resources.alerts.check_now()).digest_mail_id is None  # once a day
        await resources.notifications.deliver_due()
    assert len(smtp[1]) == 2


def test_an_unknown_currency_is_refused_at_start_up(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError, match="SHOP_CURRENCY: unknown currency 'XYZ'"):
        load_settings(_env_file=None, dev_mode=True, shop_currency="XYZ")
    assert (
        load_settings(_env_file=None, dev_mode=True, shop_country="GB").shop.formats.money(1234.5)
        == "£1,234.50"
    )
    assert load_settings(_env_file=None, dev_mode=True, shop_currency="eur").shop.formats.currency == "EUR"


def shop_store(path: Path, stock: list[int], orders: list[tuple[int, int, float]]) -> None:
    """An embedded store: products 1..n with `stock`, and one sale a day of (product, units, unit price)
    for each order, on the days just before TODAY."""
    ids = list(range(1, len(stock) + 1))
    products = pd.DataFrame(
        {
            "product_id": ids,
            "name": [f"Item {i}" for i in ids],
            "sku": [f"I-{i}" for i in ids],
            "price": 2.0,
            "stock_quantity": stock,
            "description": None,
            "image_url": None,
            "low_stock_threshold": 10,
            "category": None,
        }
    )
    sold_at = [datetime.combine(TODAY - timedelta(days=n + 1), time(11, 0)) for n in range(len(orders))]
    sales = pd.DataFrame(
        {
            "id": range(1, len(orders) + 1),
            "sale_date": pd.Series(sold_at, dtype="datetime64[us]"),
            "total_amount": [units * price for _, units, price in orders],
        }
    )
    items = pd.DataFrame(
        {
            "id": range(1, len(orders) + 1),
            "sale_id": range(1, len(orders) + 1),
            "product_id": [p for p, _, _ in orders],
            "product_name": [f"Item {p}" for p, _, _ in orders],
            "sku": [f"I-{p}" for p, _, _ in orders],
            "quantity": [u for _, u, _ in orders],
            "unit_price": [price for _, _, price in orders],
            "subtotal": [u * price for _, u, price in orders],
        }
    )
    store = EmbeddedStore(path)
    try:
        store.load(products, sales, items)
    finally:
        store.close()


async def checked(settings: Settings) -> tuple[list[Alert], Mail | None]:
    async with open_resources(settings, clock=MovableClock()) as resources:
        changes = await resources.alerts.check_now()
        rows = await resources.alerts.alerts.mails([changes.digest_mail_id] if changes.digest_mail_id else [])
        mail = next(iter(rows.values()), None)
        return changes.opened, Mail(recipients=[], subject=mail.subject, body=mail.body) if mail else None


async def test_a_shop_without_any_sale_gets_one_summary_line(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(alert_recipients=[BOSS])
    shop_store(settings.source.embedded_db_path, [50] * 40, [])
    opened, mail = await checked(settings)
    assert [(a.kind, a.subject) for a in opened] == [(AlertKind.DEAD_STOCK, NEVER_SOLD)]
    assert opened[0].numbers["products"] == 40 and opened[0].at_stake == 40 * 50 * 2.0
    assert mail is not None and "40 products in stock have never sold" in mail.body


async def test_one_giant_order_and_negative_stock_give_no_absurd_figure(
    make_settings: Callable[..., Settings],
) -> None:
    """Product 1 sold once, 80,995 units yesterday; product 2 has -3 in stock (Java allows it) and sells."""
    settings = make_settings(alert_recipients=[BOSS])
    orders = [(1, 80_995, 1.0)] + [(2, 3, 2.0)] * 27
    shop_store(settings.source.embedded_db_path, [0, -3], orders)
    opened, mail = await checked(settings)
    by_subject = {a.subject: a for a in opened}
    negative = by_subject["product:2"]
    assert negative.kind == AlertKind.OUT_OF_STOCK and negative.numbers["current_stock"] == -3
    assert negative.at_stake == pytest.approx(27 * 3 / 28 * 21 * 2.0, abs=0.01)  # sales at risk, no more
    giant = by_subject["product:1"]  # one order is not a daily rate: nothing to lose a day, nothing to order
    assert (giant.kind, giant.severity, giant.at_stake) == (AlertKind.OUT_OF_STOCK, "low", 0.0)
    assert giant.numbers["suggested_order_qty"] == 0 and "no recent demand" in giant.message
    assert mail is not None and "e+" not in mail.body and len(mail.body) < 200_000
