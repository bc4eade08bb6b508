"""Store stage: report files under `EXPORT_DIR/reports/`, named by the server only (the job id), written
atomically (a re-delivered job replaces its own file, never adds a second), removed after retention."""

from __future__ import annotations

import errno
import os
import tempfile
from datetime import datetime
from pathlib import Path

from salesflow.errors import StorageFull
from salesflow.models.reports import ReportFormat

EXTENSIONS = {ReportFormat.PDF: "pdf", ReportFormat.EXCEL: "xlsx"}
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {ReportFormat.PDF: "application/pdf", ReportFormat.EXCEL: XLSX_MEDIA_TYPE}


class ArtifactStore:
    def __init__(self, export_dir: Path) -> None:
        self.folder = export_dir / "reports"

    def path(self, job_id: str, report_format: ReportFormat) -> Path:
        return self.folder / f"{job_id}.{EXTENSIONS[report_format]}"

    def write(self, job_id: str, report_format: ReportFormat, content: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(job_id, report_format)
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{job_id}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException as exc:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull(
                    "the export folder (EXPORT_DIR) is full: the file could not be written"
                ) from exc
            raise
        return target

    def remove(self, job_id: str, report_format: ReportFormat) -> bool:
        path = self.path(job_id, report_format)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed


def download_name(report_type: str, period: str, report_format: ReportFormat, generated_at: datetime) -> str:
    """`salesflow_{type}_{period}_{YYYY-MM-DD_HHMM}.{pdf|xlsx}` (ASCII: the frontend parses it)."""
    stamp = generated_at.strftime("%Y-%m-%d_%H%M")
    return f"salesflow_{report_type}_{period}_{stamp}.{EXTENSIONS[report_format]}"
