"""Report jobs on the wire (AD-04: `queued → generating → completed | failed`, polled, then downloaded)."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from salesflow.models.analytics import Period
from salesflow.models.zones import known_zone


class ReportType(StrEnum):
    SALES = "sales"
    STOCK = "stock"
    COMBINED = "combined"


class ReportFormat(StrEnum):
    PDF = "pdf"
    EXCEL = "excel"


class JobStatus(StrEnum):
    QUEUED = "queued"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"


class JobOutcome(StrEnum):
    """How one attempt at a background job ended: the `status` label of `salesflow_jobs_total`."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # for good: the job says why
    DEFERRED = "deferred"  # not done, tried again later (a full export folder)
    SKIPPED = "skipped"  # another attempt holds the job, or a later one took it over


class ReportRequest(BaseModel):
    """`POST /reports/jobs`: what to report on; an explicit window (both dates) replaces the period."""

    report_type: ReportType
    format: ReportFormat = ReportFormat.PDF
    period: Period = Period.MONTHLY
    start_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _both_dates(self) -> ReportRequest:
        if (self.start_date is None) != (self.end_date is None):
            raise ValueError("give both start_date and end_date, or neither")
        return self


class GenerateReportRequest(BaseModel):
    """The frontend's `POST /reports/generate` (frontend-contract.md call 5)."""

    report_type: ReportType
    format: ReportFormat = ReportFormat.PDF
    period: Literal[Period.DAILY, Period.WEEKLY, Period.MONTHLY] = Period.MONTHLY


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    status_url: str
    download_url: str


class ReportJobState(BaseModel):
    job_id: str
    status: JobStatus
    report_type: ReportType
    format: ReportFormat
    period: Period
    start_date: date | None
    end_date: date | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    attempts: int
    worker: str | None = Field(default=None, description="host:pid that made (or is making) it")
    owner: str = Field(description="the username of who asked for it")
    file_name: str | None
    download_url: str | None = Field(description="set once the job is completed")


class ReportJobPage(BaseModel):
    data: list[ReportJobState]
    total: int
    offset: int
    limit: int


# The HTML5 form's e-mail address: ASCII, no control character, a dotted domain (internal ones too).
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


def _address(value: str) -> str:
    """A bare e-mail address (shops use internal domains too: no list of allowed ones)."""
    value = value.strip()
    # An RFC 2047 encoded word ("=?utf-8?…?=") is a header's syntax, not an address: a server refuses it.
    if not _ADDRESS.fullmatch(value) or "=?" in value or len(value) > 254:
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


Recipient = Annotated[str, AfterValidator(_address)]


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class ScheduleFields(BaseModel):
    """What a schedule says; every field optional (PATCH), checked when present."""

    report_type: ReportType | None = None
    format: ReportFormat | None = None
    period: Period | None = None
    frequency: Frequency | None = None
    weekdays: list[int] | None = Field(default=None, description="0 = Monday … 6 = Sunday (weekly)")
    day_of_month: int | None = Field(
        default=None, ge=1, le=31, description="monthly; 29-31 fall on the last day"
    )
    hour: int | None = Field(default=None, ge=0, le=23)
    minute: int | None = Field(default=None, ge=0, le=59)
    timezone: str | None = Field(default=None, description="IANA zone; default BUSINESS_TZ")
    recipients: list[Recipient] | None = Field(default=None, max_length=50)
    enabled: bool | None = None

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(not 0 <= d <= 6 for d in value)):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday), at least one")
        return sorted(set(value)) if value is not None else None

    @field_validator("day_of_month")
    @classmethod
    def _day(cls, value: int | None) -> int | None:
        if value in (29, 30):
            raise ValueError("not every month has that day: use 1-28, or 31 for the month's last day")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return known_zone(value) if value is not None else None


class ScheduleRequest(ScheduleFields):
    """`POST /reports/schedules`."""

    report_type: ReportType
    frequency: Frequency = Frequency.DAILY
    hour: int = Field(ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)

    @model_validator(mode="after")
    def _complete(self) -> ScheduleRequest:
        if self.frequency == Frequency.WEEKLY and not self.weekdays:
            raise ValueError("a weekly schedule needs weekdays")
        if self.frequency == Frequency.MONTHLY and self.day_of_month is None:
            raise ValueError("a monthly schedule needs day_of_month")
        return self


class ScheduleState(BaseModel):
    schedule_id: str
    report_type: ReportType
    format: ReportFormat
    period: Period
    frequency: Frequency
    weekdays: list[int]
    day_of_month: int | None
    hour: int
    minute: int
    timezone: str
    recipients: list[str]
    enabled: bool
    owner: str
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None


class ScheduleList(BaseModel):
    data: list[ScheduleState]
    total: int


class LegacyScheduleRequest(BaseModel):
    """The frontend's `POST /reports/schedule` (frontend-contract.md call 6): a daily report."""

    report_type: ReportType
    format: ReportFormat = ReportFormat.PDF
    hour: int = Field(ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)


class LegacyScheduleAnswer(BaseModel):
    status: Literal["scheduled"] = "scheduled"
    job_id: str
    hour: int
    minute: int
    storage: str = Field(default="server", description="where files are kept (never a server path)")
