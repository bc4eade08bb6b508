"""Reading stage of the import: bytes → a grid of cell values, the file type decided by content.

Spreadsheets (.xlsx, .xlsm, .xls, .ods) are read by python-calamine, values only: macros never run and a
formula cell gives its cached value. Zip-based files are checked against decompression bombs first. CSV text
is decoded as UTF-8 (with or without BOM) or cp1252, and its delimiter (`,` `;` tab) is sniffed.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from typing import cast

from python_calamine import CalamineError, CalamineWorkbook

from salesflow.errors import InvalidInput

Cell = object
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (BIFF in an OLE container)
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Table:
    """One sheet's cells, row by row, and what else the file holds."""

    kind: str  # xlsx | xls | ods | csv
    sheets: list[str]
    sheet: str
    rows: list[list[Cell]]


def read_table(content: bytes, *, sheet: str | None = None, max_rows: int = 200_000) -> Table:
    """The cells of `sheet` (default: the first sheet with data); 4xx-worthy problems raise InvalidInput."""
    if not content.strip():
        raise InvalidInput("the file is empty", field="file")
    if content.startswith(_ZIP_MAGIC):
        kind = _zip_kind(content)
        return _read_workbook(content, kind, sheet, max_rows)
    if content.startswith(_OLE_MAGIC):
        return _read_workbook(content, "xls", sheet, max_rows)
    return _read_csv(content, max_rows)


def _zip_kind(content: bytes) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        names = set(archive.namelist())
        total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise InvalidInput(
            "the file is a damaged zip archive, not a readable spreadsheet", field="file"
        ) from exc
    if total > MAX_UNCOMPRESSED_BYTES:
        raise InvalidInput(
            f"the spreadsheet unpacks to {total // 2**20} MiB, over the {MAX_UNCOMPRESSED_BYTES // 2**20} MiB"
            " allowed (a decompression bomb?)",
            field="file",
        )
    if "[Content_Types].xml" in names:
        return "xlsx"
    if "mimetype" in names and b"opendocument.spreadsheet" in archive.read("mimetype"):
        return "ods"
    raise InvalidInput("the file is a zip archive but not a spreadsheet (.xlsx, .xlsm or .ods)", field="file")


def _read_workbook(content: bytes, kind: str, sheet: str | None, max_rows: int) -> Table:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
        names = list(workbook.sheet_names)
        if sheet is not None and sheet not in names:
            raise InvalidInput(
                f"no sheet named {sheet!r}; the file has: {', '.join(names)}", field="sheet", value=sheet
            )
        chosen, rows = sheet or names[0], []
        for name in [sheet] if sheet is not None else names:  # default: the first sheet with data
            chosen, rows = name, workbook.get_sheet_by_name(name).to_python(skip_empty_area=True)
            if rows:
                break
    except CalamineError as exc:
        raise InvalidInput(f"the {kind} file cannot be read: {type(exc).__name__}", field="file") from exc
    if len(rows) > max_rows + 50:
        raise InvalidInput(f"the sheet has {len(rows)} rows, over the {max_rows} allowed", field="file")
    return Table(kind=kind, sheets=names, sheet=chosen, rows=cast(list[list[Cell]], rows))


def _read_csv(content: bytes, max_rows: int) -> Table:
    text = _decode(content)
    sample = text[:20_000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = max(",;\t", key=sample.count)
    if "\x00" in sample:
        raise InvalidInput("the file is neither a spreadsheet nor CSV text", field="file")
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if len(rows) > max_rows + 50:
        raise InvalidInput(f"the file has {len(rows)} rows, over the {max_rows} allowed", field="file")
    return Table(kind="csv", sheets=["csv"], sheet="csv", rows=[list(row) for row in rows])


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("the text is neither UTF-8 nor Windows-1252", field="file")
