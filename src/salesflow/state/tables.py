"""The state database's tables (SQLAlchemy 2 declarative); migrations/ creates them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every engine (SQLite keeps no offset: what it gives back is UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class ReportJob(Base):
    """One report to generate: its request, owner, lifecycle and file."""

    __tablename__ = "report_jobs"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_time", name="uq_report_jobs_schedule_fire"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    owner_name: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))  # the owner's data scope when asked (see User.scope)
    report_type: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | generating | completed | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    file_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # past REPORT_RETENTION_DAYS
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(128))  # host:pid holding the current attempt
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: its message is not sent yet
    schedule_id: Mapped[str | None] = mapped_column(String(32))
    fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReportSchedule(Base):
    """A report made at a local time: daily, on chosen weekdays, or on a day of the month."""

    __tablename__ = "report_schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    owner_name: Mapped[str] = mapped_column(String(128))
    report_type: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(16))
    frequency: Mapped[str] = mapped_column(String(8))  # daily | weekly | monthly
    weekdays: Mapped[list[int]] = mapped_column(JSON)  # 0 = Monday (weekly)
    day_of_month: Mapped[int | None] = mapped_column(Integer)  # 1-31, the month's last day when shorter
    hour: Mapped[int] = mapped_column(Integer)
    minute: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutgoingMail(Base):
    """An e-mail to send (the outbox): kept until sent, retried with backoff, sent once."""

    __tablename__ = "mail_outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    attachment_path: Mapped[str | None] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    html: Mapped[str | None] = mapped_column(Text)  # an HTML alternative to `body`
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)  # one mail per (cause), never two


UNRESOLVED = text("state != 'resolved'")


class Alert(Base):
    """A stock problem or sales anomaly of one subject (a product, or the whole shop), from first seen to
    resolved. At most one unresolved alert per (kind, subject): the partial unique index holds it even
    when two evaluations run at once."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_unresolved",
            "kind",
            "subject",
            unique=True,
            sqlite_where=UNRESOLVED,
            postgresql_where=UNRESOLVED,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))  # "global" | "product:<id>"
    product_id: Mapped[int | None] = mapped_column(Integer, index=True)
    product_sku: Mapped[str | None] = mapped_column(String(200))
    product_name: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(8))  # low | medium | high
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | acknowledged | resolved
    message: Mapped[str] = mapped_column(Text)
    numbers: Mapped[dict[str, object]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_severity: Mapped[str | None] = mapped_column(String(8))  # the severity last e-mailed
    acknowledged_severity: Mapped[str | None] = mapped_column(String(8))  # reopened only above it
    at_stake: Mapped[float] = mapped_column(Float, index=True, default=0.0)  # money, see rules.py
    mail_id: Mapped[str | None] = mapped_column(String(32))  # the digest that told of it last


class AlertCheck(Base):
    """One evaluation of the alert rules; a scheduled slot is evaluated once, whoever fires it."""

    __tablename__ = "alert_checks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot: Mapped[datetime | None] = mapped_column(UTCDateTime(), unique=True)  # None: start-up, on demand
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | startup | manual
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opened: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class SalesImport(Base):
    """An uploaded sales file under review: its record (counts, problems, batches written) and its rows."""

    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_owner_sha256", "owner", "sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # previewed | completed | partial | failed
    record: Mapped[dict[str, object]] = mapped_column(JSON)
    rows: Mapped[bytes] = mapped_column(LargeBinary)  # as the parser process encoded them
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DemandBatch(Base):
    """What one day's demand-forecast batch found: forecast units a day per product over the lead time.
    The batches completed before a business day began settle that day's demand (analytics/demand.py)."""

    __tablename__ = "demand_batches"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    figures: Mapped[dict[str, float]] = mapped_column(JSON)  # product id (text) → units a day


class ForecastScore(Base):
    """One day's forecast of one series (a product, or the whole shop: `SHOP_SERIES`) over the horizon the UI
    shows, kept until its days are known, then scored against them (and seasonal naive) and kept small."""

    __tablename__ = "forecast_scores"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)  # the forecast's first day
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Until scored: the forecast's days (mean, bands, seasonal naive); then None.
    forecast: Mapped[dict[str, list[float]] | None] = mapped_column(JSON, nullable=True)
    scale: Mapped[float | None] = mapped_column(Float, nullable=True)  # in-sample seasonal-naive error a day
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    days: Mapped[int] = mapped_column(Integer, default=0)
    actual: Mapped[float] = mapped_column(Float, default=0.0)  # Σ actual over the days
    predicted: Mapped[float] = mapped_column(Float, default=0.0)  # Σ forecast
    abs_error: Mapped[float] = mapped_column(Float, default=0.0)  # Σ |actual − forecast|
    naive_abs_error: Mapped[float] = mapped_column(Float, default=0.0)  # Σ |actual − seasonal naive|
    in_80: Mapped[int] = mapped_column(Integer, default=0)  # days inside the 80% band
    in_95: Mapped[int] = mapped_column(Integer, default=0)
