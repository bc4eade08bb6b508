"""The state database's tables (SQLAlchemy 2 declarative); migrations/ creates them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    schedule_id: Mapped[str | None] = mapped_column(String(32))
    fire_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
