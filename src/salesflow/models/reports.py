"""Report jobs on the wire (AD-04: `queued → generating → completed | failed`, polled, then downloaded)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from salesflow.models.analytics import Period


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
    owner: str = Field(description="the username of who asked for it")
    file_name: str | None
    download_url: str | None = Field(description="set once the job is completed")


class ReportJobPage(BaseModel):
    data: list[ReportJobState]
    total: int
    offset: int
    limit: int
