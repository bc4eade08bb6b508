"""Reading every spreadsheet kind from its content: xls, ods, xlsm, several sheets, formulas, Excel tables."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime

import openpyxl
import pytest
import xlwt
from openpyxl.worksheet.table import Table as ExcelTable

from salesflow.errors import InvalidInput
from salesflow.services.excel_import.reading import read_table

ROWS: list[list[object]] = [
    ["Date", "SKU", "Qty"],
    [datetime(2026, 3, 1, 9, 30), "A-1", 2],
    [datetime(2026, 3, 2), "B-1", 3],
]


def xlsx_bytes(sheets: dict[str, list[list[object]]], *, table: bool = False) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
        if table:
            sheet.add_table(
                ExcelTable(displayName=f"Sales{len(workbook.sheetnames)}", ref=f"A1:C{len(rows)}")
            )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_zip(content: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, change(data) if item.filename == name else data)
    return out.getvalue()


def ods_bytes(rows: list[list[object]]) -> bytes:
    """A minimal OpenDocument spreadsheet, as LibreOffice writes the essentials."""

    def cell(value: object) -> str:
        if isinstance(value, datetime):
            return f'<table:table-cell office:value-type="date" office:date-value="{value.isoformat()}"/>'
        if isinstance(value, int | float):
            return f'<table:table-cell office:value-type="float" office:value="{value}"/>'
        return f'<table:table-cell office:value-type="string"><text:p>{value}</text:p></table:table-cell>'

    body = "".join("<table:table-row>" + "".join(cell(v) for v in row) + "</table:table-row>" for row in rows)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content'
        ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body>'
        f'<office:spreadsheet><table:table table:name="Ventes">{body}</table:table></office:spreadsheet>'
        "</office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest'
        ' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type='
        '"application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", manifest)
    return out.getvalue()


def test_xls_is_read() -> None:
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Ventes")
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            style = (
                xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM")
                if isinstance(value, datetime)
                else xlwt.Style.default_style
            )
            sheet.write(r, c, value, style)
    buffer = io.BytesIO()
    workbook.save(buffer)
    table = read_table(buffer.getvalue())
    assert (table.kind, table.sheets) == ("xls", ["Ventes"])
    assert table.rows[1] == [datetime(2026, 3, 1, 9, 30), "A-1", 2] and table.rows[2][0] == date(2026, 3, 2)


def test_ods_is_read() -> None:
    table = read_table(ods_bytes(ROWS))
    assert (table.kind, table.sheets) == ("ods", ["Ventes"])
    assert table.rows[1][1:] == ["A-1", 2] and table.rows[0] == ["Date", "SKU", "Qty"]


def test_xlsm_is_read_by_content_and_its_macros_never_run() -> None:
    macro_enabled = rewrite_zip(
        xlsx_bytes({"Sales": ROWS}),
        "[Content_Types].xml",
        lambda data: data.replace(b"sheet.main+xml", b"sheet.macroEnabled.main+xml"),
    )
    table = read_table(macro_enabled)
    assert table.kind == "xlsx" and table.rows[1][1] == "A-1"


def test_a_chosen_sheet_among_several() -> None:
    content = xlsx_bytes(
        {"Notes": [["nothing here"]], "Feb": ROWS, "Mar": [["Date", "SKU", "Qty"], [1, "C-1", 5]]}
    )
    assert read_table(content, sheet="Mar").rows[1] == [1, "C-1", 5]
    assert read_table(content).sheet == "Notes"  # the first sheet with data
    with pytest.raises(InvalidInput, match="no sheet named 'Apr'; the file has: Notes, Feb, Mar"):
        read_table(content, sheet="Apr")


def test_formula_cells_give_their_cached_value() -> None:
    content = xlsx_bytes({"Sales": [["SKU", "Qty"], ["A-1", 4]]})

    def add_formula(data: bytes) -> bytes:  # Excel stores the formula and its last computed value
        return re.sub(rb'<c r="B2"([^>]*)><v>4</v></c>', rb'<c r="B2"\1><f>2*2</f><v>4</v></c>', data)

    with_formula = rewrite_zip(content, "xl/worksheets/sheet1.xml", add_formula)
    assert b"<f>2*2</f>" in zipfile.ZipFile(io.BytesIO(with_formula)).read("xl/worksheets/sheet1.xml")
    assert read_table(with_formula).rows[1] == ["A-1", 4]


def test_an_excel_table_object_is_read_as_its_cells() -> None:
    table = read_table(xlsx_bytes({"Sales": ROWS}, table=True))
    assert table.rows[0] == ["Date", "SKU", "Qty"] and len(table.rows) == 3
