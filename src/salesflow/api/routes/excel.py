"""Excel import (UC5): preview (any user), commit (ADMIN), follow, and the frontend's one-shot call."""

from __future__ import annotations

from typing import Annotated

import anyio
import orjson
from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile

from salesflow.api.deps import CurrentUser, ImportDep, SettingsDep, limit_expensive, require_roles
from salesflow.api.envelope import EnvelopeRoute
from salesflow.api.errors import RowsRejectedBody, ValidationErrorBody, documented, documented_file
from salesflow.config import Settings
from salesflow.errors import InvalidInput, PayloadTooLarge, RowsRejected
from salesflow.models.auth import Role, User
from salesflow.models.excel import CommitRequest, ImportList, ImportPreview, ImportState, OneShotImport
from salesflow.services.excel_import.pipeline import ImportService
from salesflow.services.excel_import.template import template_csv, template_xlsx
from salesflow.services.reports.artifacts import XLSX_MEDIA_TYPE

CSV_MEDIA_TYPE = "text/csv"

router = APIRouter(prefix="/excel", tags=["excel"], route_class=EnvelopeRoute)


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refused as soon as they pass `limit` (never held whole when too large)."""
    chunks, size = [], 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file is larger than the {limit // 2**20} MiB allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def _mapping(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            "mapping must be a JSON object: our field → the file's header", field="mapping", value=raw
        ) from exc
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput("mapping must be a JSON object of strings", field="mapping", value=raw)
    return {str(k): v for k, v in value.items()}


@router.post("/preview", responses=documented(429), dependencies=[Depends(limit_expensive)])
async def preview_import(
    user: CurrentUser,
    service: ImportDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    sheet: Annotated[str | None, Form()] = None,
    mapping: Annotated[str | None, Form()] = None,
    date_format: Annotated[str | None, Form()] = None,
    decimal_separator: Annotated[str | None, Form(pattern=r"^[.,]$")] = None,
) -> ImportPreview:
    """Parse and validate a spreadsheet without writing: every problem at once, and the first rows."""
    return await _preview_upload(
        file,
        service,
        settings,
        user,
        sheet=sheet,
        mapping=_mapping(mapping),
        date_format=date_format,
        decimal_separator=decimal_separator,
    )


async def _preview_upload(
    file: UploadFile,
    service: ImportService,
    settings: Settings,
    user: User,
    *,
    sheet: str | None = None,
    mapping: dict[str, str] | None = None,
    date_format: str | None = None,
    decimal_separator: str | None = None,
) -> ImportPreview:
    """The upload read and previewed once admitted (its body is read into memory only then)."""
    with service.admission.admit(user):
        content = await read_upload(file, settings.imports.max_bytes)
        return await service.preview(
            content,
            file_name=file.filename or "upload",
            user=user,
            sheet=sheet,
            mapping=mapping,
            date_format=date_format,
            decimal_separator=decimal_separator,
        )


@router.post(
    "/imports/{import_id}/commit",
    dependencies=[Depends(require_roles(Role.ADMIN)), Depends(limit_expensive)],
    responses=documented(404, 409, 429, 502, 503, 504),
)
async def commit_import(
    import_id: str, user: CurrentUser, service: ImportDep, body: CommitRequest | None = None
) -> ImportState:
    """Write the valid rows of a previewed import (409 with errors unless skip_invalid, or when repeated)."""
    options = body or CommitRequest()
    return await service.commit(import_id, user=user, skip_invalid=options.skip_invalid, force=options.force)


@router.get("/imports/{import_id}", responses=documented(404))
async def read_import(import_id: str, user: CurrentUser, service: ImportDep) -> ImportState:
    """One of the caller's imports."""
    return await service.get(import_id, user=user)


@router.get("/imports")
async def list_imports(user: CurrentUser, service: ImportDep) -> ImportList:
    """The caller's recent imports, newest first."""
    states = await service.recent(user=user)
    return ImportList(data=states, count=len(states))


@router.post(
    "/import-sales",
    dependencies=[Depends(require_roles(Role.ADMIN)), Depends(limit_expensive)],
    responses={
        **documented(409, 429, 502, 503, 504),
        422: {"model": RowsRejectedBody | ValidationErrorBody, "description": "No usable row, or a bad file"},
    },
)
async def import_sales(
    user: CurrentUser, service: ImportDep, settings: SettingsDep, file: Annotated[UploadFile, File()]
) -> OneShotImport:
    """The frontend's call: preview and commit the valid rows in one go; 422 when no row is valid."""
    preview = await _preview_upload(file, service, settings, user)
    if preview.valid_rows == 0:
        issues = [issue.model_dump() for issue in preview.errors] or [
            {"row": 0, "column": None, "value": None, "reason": "the file has no data rows"}
        ]
        raise RowsRejected(f"No valid row in {preview.file_name}: nothing was imported", issues=issues)
    state = await service.commit(preview.import_id, user=user, skip_invalid=True)
    return OneShotImport(
        import_id=state.import_id,
        status=state.status,
        message=state.message,
        total_rows=preview.total_rows,
        valid_rows=preview.valid_rows,
        imported_rows=state.imported_rows,
        errors=preview.errors,
        warnings=preview.warnings,
    )


@router.get("/template", responses=documented_file(XLSX_MEDIA_TYPE, CSV_MEDIA_TYPE))
async def download_template(
    user: CurrentUser, format: Annotated[str, Query(pattern="^(xlsx|csv)$")] = "xlsx"
) -> Response:
    """A file with the expected headers and an example row."""
    if format == "csv":
        return Response(
            template_csv(),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": 'attachment; filename="sales-import-template.csv"'},
        )
    return Response(
        await anyio.to_thread.run_sync(template_xlsx),  # XlsxWriter loads with the first one
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="sales-import-template.xlsx"'},
    )
