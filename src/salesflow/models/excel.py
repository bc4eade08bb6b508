"""Wire models of the Excel import routes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class ImportStatus(StrEnum):
    PREVIEWED = "previewed"
    PARTIAL = "partial"  # some batches written, then one failed: a repeat writes the rest
    COMPLETED = "completed"
    FAILED = "failed"


class BatchStatus(StrEnum):
    WRITTEN = "written"
    FAILED = "failed"


class ImportIssue(BaseModel):
    row: int
    column: str | None
    value: Any
    reason: str


class PreviewRow(BaseModel):
    row: int
    date: datetime | None
    sku: str
    product: str
    quantity: int
    unit_price: float | None
    order: str | None


class ImportPreview(BaseModel):
    import_id: str
    file_name: str
    sheet: str
    sheets: list[str]
    columns: list[str]
    mapping: dict[str, str]
    ignored_columns: list[str]
    total_rows: int
    valid_rows: int
    error_rows: int
    error_counts: dict[str, int]  # rows breaking each rule; `errors` lists the first 200 issues by row
    errors: list[ImportIssue]
    warnings: list[ImportIssue]
    notes: list[str]
    preview: list[PreviewRow]


class CommitRequest(BaseModel):
    skip_invalid: bool = False
    force: bool = False


class BatchOutcome(BaseModel):
    index: int
    sales: int
    rows: list[int]
    status: BatchStatus
    detail: str | None = None


class ImportState(BaseModel):
    import_id: str
    file_name: str
    uploaded_by: str | None = None  # the uploader's username (an ADMIN reviews everyone's imports)
    status: ImportStatus
    created_at: datetime
    total_rows: int
    valid_rows: int
    error_rows: int
    imported_rows: int
    skipped_rows: int
    batches: list[BatchOutcome]
    message: str


class ImportList(BaseModel):
    data: list[ImportState]
    count: int


class OneShotImport(BaseModel):
    """`POST /excel/import-sales`: the frontend's one call."""

    import_id: str
    status: ImportStatus
    message: str
    total_rows: int
    valid_rows: int
    imported_rows: int
    errors: list[ImportIssue]
    warnings: list[ImportIssue]
