"""Excel import pipeline (UC5): read → parse and validate → keep the preview → commit (batched, resumable).

Stages, in order:
0. admission (`admission.py`): a user's upload is read only while they have no other one in flight and a
   parser is free or few wait (else a 429 before the body is read into memory).
1. `read_and_validate`: `read_table` (reading.py) and `parse` (parsing.py), in a disposable process with
   memory, CPU and wall-time limits (`salesflow.sandbox`): every problem of the file at once.
2. preview: the import is kept (owner, content hash, valid rows, issues) in the state database for 7 days
   from its last change (`state/imports.py`: a Redis restart loses none); its owner and ADMINs see it.
3. commit: rows grouped into sales (by the order column, else one sale per row) and written through the
   `SalesRecorder`. Embedded store: one transaction, own dates and prices. Java: batches of
   `IMPORT_BATCH_SALES` sales with the committing user's own token; a failed batch stops the import with an
   exact account of what was and was not written, and committing again resumes at that batch.
4. idempotency: an import, or the same file content, is committed once unless `force`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import anyio
import orjson
import pandas as pd

from salesflow.data.sale_lines import SaleLineCache
from salesflow.data.sources.base import SaleInput, SaleItemInput
from salesflow.errors import Conflict, InvalidInput, NotFound, UpstreamError
from salesflow.models.auth import Role, User
from salesflow.models.excel import (
    BatchOutcome,
    BatchStatus,
    ImportIssue,
    ImportPreview,
    ImportState,
    ImportStatus,
    PreviewRow,
)
from salesflow.sandbox import Limits, Sandbox
from salesflow.services.excel_import.admission import UploadAdmission
from salesflow.services.excel_import.parsing import ImportRow, Parsed, parse, rows_from_columns
from salesflow.services.excel_import.reading import read_table
from salesflow.services.sales_recording import SalesRecorder
from salesflow.state.database import is_record_id
from salesflow.state.imports import ImportStore

REVIEWER_ROLE = Role.ADMIN  # sees, and commits, every user's imports
OWN_LISTED, EVERYONE_LISTED = 50, 200  # the newest imports a user, and a reviewer, sees listed
Batch = tuple[list[SaleInput], list[int]]  # the sales of one write and the spreadsheet rows they come from
PREVIEW_ROWS = 20
JAVA_NOTE = (
    "The system of record (Java) records imported rows as new sales dated now, at today's catalogue prices,"
    " and "
    "takes them out of stock: the file's dates and prices are not kept."
)


class ImportService:
    """Preview, commit and follow imports."""

    def __init__(
        self,
        lines: SaleLineCache,
        recorder: SalesRecorder,
        store: ImportStore,
        sandbox: Sandbox,
        admission: UploadAdmission,
        *,
        limits: Limits,
        writes_keep_history: bool,
        max_rows: int,
        batch_sales: int,
    ) -> None:
        self.lines = lines
        self.recorder = recorder
        self.store = store
        self.sandbox = sandbox
        self.admission = admission
        self.limits = limits
        self.writes_keep_history = writes_keep_history
        self.max_rows = max_rows
        self.batch_sales = batch_sales

    async def preview(
        self,
        content: bytes,
        *,
        file_name: str,
        user: User,
        sheet: str | None = None,
        mapping: dict[str, str] | None = None,
        date_format: str | None = None,
        decimal_separator: str | None = None,
    ) -> ImportPreview:
        """Parse and validate without writing; the import is kept for its owner."""
        products = await self.lines.products()
        request = ValidationRequest(
            content=content,
            products=products,
            sheet=sheet,
            mapping=mapping,
            date_format=date_format,
            decimal_separator=decimal_separator,
            max_rows=self.max_rows,
        )
        validated: Validated = await self.sandbox.run(self.limits, read_and_validate, request)
        parsed = validated.parsed
        import_id = uuid.uuid4().hex
        record = {
            "import_id": import_id,
            "owner": user.subject,
            "owner_name": user.username,
            "file_name": file_name,
            "sha256": hashlib.sha256(content).hexdigest(),
            "created_at": self.store.clock().isoformat(),
            "status": ImportStatus.PREVIEWED,
            "total_rows": parsed.total_rows,
            "error_rows": parsed.error_rows,
            "error_counts": parsed.error_counts,
            "valid_rows": validated.valid_count,
            "errors": [i.as_dict() for i in parsed.errors],
            "warnings": [i.as_dict() for i in parsed.warnings],
            "batches": [],
        }
        # The rows (up to IMPORT_MAX_ROWS of them, encoded by the parser process) are kept beside the small
        # record that every state read and listing loads.
        await self.store.add(record, validated.rows)
        return ImportPreview(
            import_id=record["import_id"],
            file_name=file_name,
            sheet=validated.sheet,
            sheets=validated.sheets,
            columns=[c for c in parsed.columns if c],
            mapping=parsed.mapping,
            ignored_columns=parsed.ignored,
            total_rows=parsed.total_rows,
            valid_rows=validated.valid_count,
            error_rows=record["error_rows"],
            error_counts=parsed.error_counts,
            errors=[ImportIssue(**i.as_dict()) for i in parsed.errors],
            warnings=[ImportIssue(**i.as_dict()) for i in parsed.warnings],
            notes=self._notes(parsed),
            preview=[_preview_row(r) for r in parsed.first_rows(PREVIEW_ROWS)],
        )

    async def commit(
        self, import_id: str, *, user: User, skip_invalid: bool = False, force: bool = False
    ) -> ImportState:
        """Write the valid rows (module docstring); 409 on errors without `skip_invalid`, or on a repeat."""
        record = await self._load(import_id, user)
        if record["status"] == ImportStatus.COMPLETED and not force:
            raise Conflict("this import was already committed; commit with force=true to record it again")
        if record["errors"] and not skip_invalid:
            raise Conflict(
                f"{record['error_rows']} row(s) have errors; fix them, or commit with skip_invalid=true to"
                " write"
                f" the {record['valid_rows']} valid rows only"
            )
        owner = record["owner"]  # an ADMIN may commit a clerk's upload: it stays the uploader's
        committed = await self.store.committed(owner=owner, sha256=record["sha256"])
        if committed is not None and committed != import_id and not force:
            raise Conflict("the same file was already imported; commit with force=true to record it again")
        if record["status"] == ImportStatus.COMPLETED:  # forced repeat: start over
            record["batches"] = []
        raw_rows = await self.store.rows(import_id)
        if raw_rows is None:
            raise NotFound(f"The rows of import {import_id!r} are no longer kept: preview the file again")
        # Embedded store: one transaction; Java: bounded batches.
        size = None if self.writes_keep_history else self.batch_sales
        keep = self.writes_keep_history
        batches = await anyio.to_thread.run_sync(
            lambda: _plan_batches(raw_rows, size=size, keep_history=keep)
        )
        await self._write(record, batches, user)
        await self.store.update(record)
        return _state(record)

    async def get(self, import_id: str, *, user: User) -> ImportState:
        return _state(await self._load(import_id, user))

    async def recent(self, *, user: User) -> list[ImportState]:
        """The caller's imports, newest first; an ADMIN's list holds every user's."""
        reviewer = user.has_any_role(REVIEWER_ROLE)
        records = await self.store.recent(
            owner=None if reviewer else user.subject, limit=EVERYONE_LISTED if reviewer else OWN_LISTED
        )
        return [_state(record) for record in records]

    async def _write(self, record: dict[str, Any], batches: list[Batch], user: User) -> None:
        done = sum(1 for b in record["batches"] if b["status"] == BatchStatus.WRITTEN)
        record["batches"] = [b for b in record["batches"] if b["status"] == BatchStatus.WRITTEN]
        for index, (sales, row_numbers) in enumerate(batches[done:], start=done):
            try:
                await self.recorder.record(sales, user=user)
            except UpstreamError as exc:
                record["batches"].append(
                    BatchOutcome(
                        index=index,
                        sales=len(sales),
                        rows=row_numbers,
                        status=BatchStatus.FAILED,
                        detail=exc.detail,
                    ).model_dump()
                )
                record["status"] = ImportStatus.PARTIAL if index > 0 else ImportStatus.FAILED
                return
            record["batches"].append(
                BatchOutcome(
                    index=index, sales=len(sales), rows=row_numbers, status=BatchStatus.WRITTEN
                ).model_dump()
            )
        record["status"] = ImportStatus.COMPLETED

    def _notes(self, parsed: Parsed) -> list[str]:
        notes = [] if self.writes_keep_history else [JAVA_NOTE]
        if parsed.ignored:
            notes.append(f"Ignored columns: {', '.join(parsed.ignored)}.")
        if "order" not in parsed.mapping:
            notes.append("No order/invoice column: each row becomes one sale.")
        return notes

    async def _load(self, import_id: str, user: User) -> dict[str, Any]:
        if not is_record_id(import_id):
            raise NotFound(f"No import {import_id[:64]!r}")
        record = await self.store.record(import_id)
        # Someone else's import is as invisible as a missing one; an ADMIN reviews and commits anyone's.
        if record is None or (record["owner"] != user.subject and not user.has_any_role(REVIEWER_ROLE)):
            raise NotFound(f"No import {import_id!r}")
        return record


@dataclass(frozen=True)
class ValidationRequest:
    """What the parser process needs: the file, the catalogue and the caller's reading options."""

    content: bytes
    products: pd.DataFrame
    sheet: str | None
    mapping: dict[str, str] | None
    date_format: str | None
    decimal_separator: str | None
    max_rows: int


@dataclass(frozen=True)
class Validated:
    """What comes back from the parser process: every issue, the first rows and the encoded valid rows."""

    sheet: str
    sheets: list[str]
    parsed: Parsed  # its `valid` columns hold the first PREVIEW_ROWS rows only
    valid_count: int
    rows: bytes


def read_and_validate(request: ValidationRequest) -> Validated:
    """Stage 1 (runs in the disposable parser process): read, parse and validate, encode the valid rows."""
    table = read_table(request.content, sheet=request.sheet, max_rows=request.max_rows)
    parsed = parse(
        table,
        request.products,
        mapping=request.mapping,
        date_format=request.date_format,
        decimal_separator=request.decimal_separator,
    )
    if parsed.total_rows > request.max_rows:
        raise InvalidInput(f"{parsed.total_rows} rows, over the {request.max_rows} allowed", field="file")
    first = {name: values[:PREVIEW_ROWS] for name, values in parsed.valid.items()}
    return Validated(
        sheet=table.sheet,
        sheets=table.sheets,
        parsed=replace(parsed, valid=first),
        valid_count=parsed.valid_count,
        rows=_encode_rows(parsed.valid),
    )


def _encode_rows(columns: dict[str, list[Any]]) -> bytes:
    return orjson.dumps(columns)  # datetimes as ISO 8601, which `rows_from_columns` reads back


def _plan_batches(raw: bytes, *, size: int | None, keep_history: bool) -> list[Batch]:
    """The stored rows as sales (see `_group_into_sales`) in batches of `size` sales (None: one batch)."""
    groups = _group_into_sales(rows_from_columns(orjson.loads(raw)))
    step = size or max(len(groups), 1)
    return [
        (
            [_sale(group, keep_history=keep_history) for group in chunk],
            [r.row for group in chunk for r in group],
        )
        for chunk in (groups[i : i + step] for i in range(0, len(groups), step))
    ]


def _group_into_sales(rows: Sequence[ImportRow]) -> list[list[ImportRow]]:
    """Rows sharing an order number form one sale; rows without one are a sale each."""
    groups: dict[str, list[ImportRow]] = {}
    singles: list[list[ImportRow]] = []
    for row in rows:
        if row.order:
            groups.setdefault(row.order, []).append(row)
        else:
            singles.append([row])
    ordered = list(groups.values()) + singles
    return sorted(ordered, key=lambda group: group[0].row)


def _sale(group: list[ImportRow], *, keep_history: bool) -> SaleInput:
    items = tuple(
        SaleItemInput(
            quantity=r.quantity, product_id=r.product_id, unit_price=r.unit_price if keep_history else None
        )
        for r in group
    )
    return SaleInput(items=items, sold_at=group[0].sold_at if keep_history else None)


def _preview_row(row: ImportRow) -> PreviewRow:
    return PreviewRow(
        row=row.row,
        date=row.sold_at,
        sku=row.sku,
        product=row.name,
        quantity=row.quantity,
        unit_price=row.unit_price,
        order=row.order,
    )


def _state(record: dict[str, Any]) -> ImportState:
    written = [b for b in record["batches"] if b["status"] == BatchStatus.WRITTEN]
    failed = [b for b in record["batches"] if b["status"] == BatchStatus.FAILED]
    imported = sum(len(b["rows"]) for b in written)
    valid = record["valid_rows"]
    status = record["status"]
    if status == ImportStatus.COMPLETED:
        message = f"{imported} row(s) imported from {record['file_name']}"
        if record["error_rows"]:
            message += f"; {record['error_rows']} row(s) with errors skipped"
    elif failed:
        rows = failed[-1]["rows"]
        message = (
            f"Import stopped: {imported} row(s) written, {valid - imported} not written; batch"
            f" {failed[-1]['index'] + 1} (rows {rows[0]}-{rows[-1]}) failed: {failed[-1]['detail']}."
            " Commit again to resume from that batch."
        )
    else:
        message = (
            f"Preview of {record['file_name']}: {valid} valid row(s), {record['error_rows']} with errors"
        )
    return ImportState(
        import_id=record["import_id"],
        file_name=record["file_name"],
        uploaded_by=record.get("owner_name"),
        status=status,
        created_at=datetime.fromisoformat(record["created_at"]),
        total_rows=record["total_rows"],
        valid_rows=valid,
        error_rows=record["error_rows"],
        imported_rows=imported,
        skipped_rows=record["total_rows"] - imported if status == ImportStatus.COMPLETED else 0,
        batches=[BatchOutcome(**b) for b in record["batches"]],
        message=message,
    )
