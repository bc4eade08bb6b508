"""Schedules: local times across DST in two zones, one run per slot whoever fires it, missed slots once,
and the run's file e-mailed once to a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.message import Message
from zoneinfo import ZoneInfo

import anyio
import pytest
from sqlalchemy import update

from salesflow.clients.mail.notifier import Mail
from salesflow.config import Settings
from salesflow.integration.java_demo import StandinState
from salesflow.integration.jwt import DEV_USER
from salesflow.models.reports import Frequency, JobOutcome, ReportType, ScheduleRequest
from salesflow.resources import Resources, open_resources
from salesflow.services.schedules import fire_times, last_fire_time
from salesflow.state.report_jobs import NewJob
from salesflow.state.tables import ReportJob, ReportSchedule
from tests.builders import MovableClock
from tests.servers import UvicornThread, free_port


def schedule(**fields: object) -> ReportSchedule:
    values: dict[str, object] = {
        "id": "s" * 32,
        "frequency": Frequency.DAILY,
        "weekdays": [],
        "day_of_month": None,
        "hour": 2,
        "minute": 30,
        "timezone": "Europe/Paris",
        "enabled": True,
    }
    values.update(fields)
    return ReportSchedule(**values)


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        ("Europe/Paris", datetime(2026, 3, 29), datetime(2026, 10, 25)),
        ("America/New_York", datetime(2026, 3, 8), datetime(2026, 11, 1)),
    ],
)
def test_a_daily_schedule_fires_once_a_day_at_local_time_across_dst(
    zone: str, spring: datetime, autumn: datetime
) -> None:
    tz = ZoneInfo(zone)
    for change in (spring, autumn):
        start = (change - timedelta(days=3)).replace(tzinfo=tz)
        times = fire_times(schedule(timezone=zone, hour=9, minute=15), start, start + timedelta(days=7))
        assert len(times) == 7 and len({t.astimezone(tz).date() for t in times}) == 7
        assert all((t.astimezone(tz).hour, t.astimezone(tz).minute) == (9, 15) for t in times)
        offsets = {t.astimezone(tz).utcoffset() for t in times}
        assert len(offsets) == 2  # the same wall time, under both offsets of the change
    # 02:30 does not exist on the spring day and happens twice on the autumn day: still one run each day.
    for change in (spring, autumn):
        day = change.replace(tzinfo=tz)
        assert len(fire_times(schedule(timezone=zone), day, day + timedelta(days=1))) == 1


def test_weekly_and_monthly_slots() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 1, tzinfo=paris)  # a Sunday
    weekly = fire_times(
        schedule(frequency=Frequency.WEEKLY, weekdays=[0, 4], hour=8, minute=0),
        start,
        start + timedelta(days=14),
    )
    assert [t.astimezone(paris).strftime("%a %d") for t in weekly] == ["Mon 02", "Fri 06", "Mon 09", "Fri 13"]
    monthly = fire_times(
        schedule(frequency=Frequency.MONTHLY, day_of_month=31, hour=8, minute=0),
        start,
        start + timedelta(days=100),
    )
    assert [t.astimezone(paris).date().isoformat() for t in monthly] == [
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
    ]


@pytest.fixture
async def resources(
    make_settings: Callable[..., Settings], store_file, smtp: tuple[int, list[Message]]
) -> AsyncIterator[tuple[Resources, MovableClock]]:
    clock = MovableClock()
    settings = make_settings(
        dev_mode=True, java_jwt_secret=None, smtp_host="127.0.0.1", smtp_port=smtp[0], smtp_starttls=False
    )
    async with open_resources(settings, clock=clock) as built:
        yield built, clock


async def finished(resources: Resources, job_id: str) -> str:
    with anyio.fail_after(120):
        return (await resources.reports.wait(job_id)).status


async def test_a_slot_fired_by_two_schedulers_runs_once_and_is_mailed_once(
    resources: tuple[Resources, MovableClock], smtp: tuple[int, list[Message]]
) -> None:
    built, clock = resources
    service = built.schedules
    created = await service.create(
        ScheduleRequest(report_type=ReportType.STOCK, hour=12, minute=0, recipients=["boss@shop.test"]),
        user=DEV_USER,
    )
    slot = last_fire_time(created, clock(), within=timedelta(days=1))
    assert slot is not None
    first, second = await service.fire(created.id, slot), await service.fire(created.id, slot)
    assert first is not None and second is None
    assert await finished(built, first.id) == "completed"
    latest = await built.reports.jobs.latest_scheduled(report_type="stock", report_format="pdf")
    assert latest is not None and latest.id == first.id  # what GET /reports/scheduled/latest serves
    with anyio.fail_after(60):  # the run queues its e-mail just after it is marked completed
        await built.jobs.broker.wait_all()  # type: ignore[attr-defined]  # the in-memory broker
    assert await built.notifications.deliver_due() == 1
    assert await built.notifications.deliver_due() == 0  # sent once
    _, received = smtp
    assert len(received) == 1 and received[0]["To"] == "boss@shop.test"
    attachments = [part for part in received[0].walk() if part.get_filename()]
    assert len(attachments) == 1 and str(attachments[0].get_filename()).startswith("salesflow_stock_")
    assert bytes(attachments[0].get_payload(decode=True)).startswith(b"%PDF")


async def test_a_slot_missed_while_down_runs_once_within_the_grace_period(
    resources: tuple[Resources, MovableClock],
) -> None:
    built, clock = resources
    service = built.schedules
    created = await service.create(
        ScheduleRequest(report_type=ReportType.SALES, hour=9, minute=0), user=DEV_USER
    )
    clock.now = clock.now.replace(hour=11, minute=0) + timedelta(days=3)  # down for three days
    assert await service.catch_up(grace=timedelta(hours=6)) == 1  # today's 09:00 only, not one per missed day
    assert await service.catch_up(grace=timedelta(hours=6)) == 0
    runs = await service.runs(created.id)
    assert [r.fire_time.astimezone(UTC).hour for r in runs if r.fire_time] == [9]
    clock.now += timedelta(hours=10)  # 21:00: the 09:00 slot is out of a 6-hour grace
    assert await service.catch_up(grace=timedelta(hours=6)) == 0


async def test_a_failed_send_is_kept_and_retried(
    resources: tuple[Resources, MovableClock], smtp: tuple[int, list[Message]]
) -> None:
    built, clock = resources

    port, received = smtp
    built.notifications.notifier.port = free_port()  # type: ignore[attr-defined]  # nobody listens there
    assert await built.notifications.queue(Mail(["a@shop.test"], "hello", "body"), dedupe_key="t1")
    assert not await built.notifications.queue(Mail(["a@shop.test"], "hello", "body"), dedupe_key="t1")
    assert await built.notifications.deliver_due() == 0
    [kept] = await built.notifications.outbox.all()
    assert kept.status == "pending" and kept.attempts == 1 and kept.last_error
    assert await built.notifications.deliver_due() == 0  # not due yet: backoff
    built.notifications.notifier.port = port  # type: ignore[attr-defined]
    clock.now += timedelta(minutes=1)
    assert await built.notifications.deliver_due() == 1
    assert len(received) == 1


async def test_a_scheduled_daily_report_covers_the_last_complete_day_and_says_so(
    resources: tuple[Resources, MovableClock], smtp: tuple[int, list[Message]]
) -> None:
    built, clock = resources
    created = await built.schedules.create(
        ScheduleRequest(
            report_type=ReportType.SALES, hour=7, minute=0, timezone="UTC", recipients=["boss@shop.test"]
        ),
        user=DEV_USER,
    )
    slot = last_fire_time(created, clock(), within=timedelta(days=1))
    assert slot is not None
    job = await built.schedules.fire(created.id, slot)
    assert job is not None
    yesterday = slot.date() - timedelta(days=1)
    assert (job.start_date, job.end_date) == (yesterday, yesterday)
    assert await finished(built, job.id) == "completed"
    with anyio.fail_after(60):
        await built.jobs.broker.wait_all()  # type: ignore[attr-defined]  # the in-memory broker
    await built.notifications.deliver_due()
    [mail] = smtp[1]
    label = f"{yesterday:%A} {yesterday.isoformat()}"
    assert mail["Subject"] == f"SalesFlow sales report: {label}"
    body = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert isinstance(body, bytes)
    assert (b"Revenue " in body and b"on the day before" in body) or b"No sales in" in body
    [attachment] = [part for part in mail.walk() if part.get_filename()]
    name = f"salesflow_sales_{yesterday}_{yesterday}_"
    assert str(attachment.get_filename()).startswith(name)


async def test_a_failed_scheduled_run_is_told_to_its_recipients_and_the_admin(
    prod_settings: Settings,
    standin: tuple[UvicornThread, StandinState],
    smtp: tuple[int, list[Message]],
) -> None:
    """Java is down when the slot fires: the run fails with the reason, and the people waiting for the report
    (and whoever can fix the cause) hear of it once."""
    server, _ = standin
    settings = prod_settings.replaced(
        smtp_host="127.0.0.1",
        smtp_port=smtp[0],
        smtp_starttls=False,
        admin_email="it@shop.test",
    )
    clock = MovableClock()
    async with open_resources(settings, clock=clock) as built:
        created = await built.schedules.create(
            ScheduleRequest(report_type=ReportType.SALES, hour=12, minute=0, recipients=["boss@shop.test"]),
            user=DEV_USER,
        )
        slot = last_fire_time(created, clock(), within=timedelta(days=1))
        assert slot is not None
        server.stop()  # Java down before anything was loaded
        job = await built.schedules.fire(created.id, slot)
        assert job is not None and await finished(built, job.id) == "failed"
        with anyio.fail_after(60):  # the failure is told just after the job is marked failed
            await built.jobs.broker.wait_all()  # type: ignore[attr-defined]  # the in-memory broker
        assert await built.notifications.deliver_due() == 1
        assert await built.notifications.deliver_due() == 0
        _, received = smtp
        [mail] = received
        assert mail["To"] == "boss@shop.test, it@shop.test" and "could not be made" in mail["Subject"]
        assert "Java" in mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
        # Its message delivered again: the failed job is not run, nor told of twice.
        assert await built.reports.run(job.id) == JobOutcome.SKIPPED
        assert await built.notifications.deliver_due() == 0
        # A run whose workers all died runs out of attempts at its next claim: told as well.
        exhausted = await built.reports.jobs.create_scheduled(
            NewJob(
                owner=DEV_USER.subject,
                owner_name=DEV_USER.username,
                scope="admin",
                report_type="sales",
                format="pdf",
                period="daily",
            ),
            schedule_id=created.id,
            fire_time=slot - timedelta(days=1),
        )
        assert exhausted is not None
        async with built.state.session() as session, session.begin():
            await session.execute(
                update(ReportJob)
                .where(ReportJob.id == exhausted.id)
                .values(attempts=settings.reports.max_attempts)
            )
        assert await built.reports.run(exhausted.id) == JobOutcome.SKIPPED
        assert (await built.reports.jobs.get(exhausted.id)).status == "failed"  # type: ignore[union-attr]
        assert await built.notifications.deliver_due() == 1
        assert "gave up after" in received[-1].get_payload(decode=True).decode()  # type: ignore[union-attr]
