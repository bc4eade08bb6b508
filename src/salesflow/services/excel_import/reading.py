"""Reading stage of the import: bytes → a grid of cell values, the file type decided by content.

Spreadsheets (.xlsx, .xlsm, .xls, .ods) are read by python-calamine, values only: macros never run and a
formula cell gives its cached value. Zip-based files are checked before any cell is materialised: against
decompression bombs, sheets whose declared extent is too large to lay out, and texts longer than a cell can
hold. CSV text is decoded as UTF-8 (with or without BOM) or cp1252, with any line ending, and its delimiter
(`,` `;` tab) is sniffed. This stage runs in a disposable process (`salesflow.sandbox`): what these checks
cannot foresee costs that process only.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import cast

from python_calamine import CalamineError, CalamineWorkbook

from salesflow.errors import InvalidInput, PayloadTooLarge

Cell = object
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_CELL_CHARS = 32_767  # Excel's own limit for the text of one cell
MAX_SHEET_CELLS = 10_000_000  # rows × columns a sheet may span: the reader lays the whole extent out
# One shared string in bytes: the longest legal text, in UTF-8 (≤ 4 bytes a character, XML escapes up to
# 6), plus rich-text markup.
_MAX_SHARED_STRING_BYTES = MAX_CELL_CHARS * 6 + 64 * 1024
_DIMENSION = re.compile(
    rb"<(?:\w+:)?dimension\s+ref=\"\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?\""
)
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
        kind = _zip_kind(content, max_rows)
        return _read_workbook(content, kind, sheet, max_rows)
    if content.startswith(_OLE_MAGIC):
        return _read_workbook(content, "xls", sheet, max_rows)
    return _read_csv(content, max_rows)


def _zip_kind(content: bytes, max_rows: int) -> str:
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
        try:
            _check_xlsx_extent(archive, max_rows)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise InvalidInput(
                f"the file is a damaged zip archive ({type(exc).__name__}), not a readable spreadsheet",
                field="file",
            ) from exc
        return "xlsx"
    if "mimetype" in names and b"opendocument.spreadsheet" in archive.read("mimetype"):
        return "ods"
    raise InvalidInput("the file is a zip archive but not a spreadsheet (.xlsx, .xlsm or .ods)", field="file")


def _check_xlsx_extent(archive: zipfile.ZipFile, max_rows: int) -> None:
    """Refuse what cannot be laid out: a declared sheet extent or a shared text over the limits."""
    for info in archive.infolist():
        name = info.filename
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            with archive.open(info) as part:
                match = _DIMENSION.search(part.read(16 * 1024))
            if match:
                last_column = (match.group(3) or match.group(1)).decode()
                rows, columns = int(match.group(4) or match.group(2)), _column_number(last_column)
                if rows > max_rows + 50:
                    raise InvalidInput(
                        f"{name} declares {rows} rows, over the {max_rows} allowed", field="file"
                    )
                if rows * columns > MAX_SHEET_CELLS:
                    raise PayloadTooLarge(
                        f"{name} declares an extent of {rows} rows × {columns} columns (to"
                        f" {last_column}{rows}), over the {MAX_SHEET_CELLS:,} cells allowed"
                    )
    if "xl/sharedStrings.xml" in archive.namelist():
        longest = max(map(len, archive.read("xl/sharedStrings.xml").split(b"</si>")))
        if longest > _MAX_SHARED_STRING_BYTES:
            raise PayloadTooLarge(
                f"the workbook holds a text of about {longest // 1024} KiB, longer than the"
                f" {MAX_CELL_CHARS:,} characters a cell can hold"
            )


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _read_workbook(content: bytes, kind: str, sheet: str | None, max_rows: int) -> Table:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
        names = list(workbook.sheet_names)
        if not names:
            raise InvalidInput(f"the {kind} file has no sheet", field="file")
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
    # Universal newlines: bare CR (old Mac exports) ends a line too; a cell is at most what Excel holds.
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    csv.field_size_limit(MAX_CELL_CHARS)
    try:
        rows = list(reader)
    except csv.Error as exc:
        reason = (
            f"a cell is longer than the {MAX_CELL_CHARS:,} characters a spreadsheet cell can hold"
            if "field limit" in str(exc)
            else str(exc)
        )
        line = reader.line_num
        raise InvalidInput(f"line {line} cannot be read as CSV: {reason}", field="file", row=line) from exc
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
