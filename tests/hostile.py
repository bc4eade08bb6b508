"""Hostile uploads, built byte by byte: the corpus of tests/api/test_hostile_uploads.py and
bench/hostile_uploads.py. Each one broke or stalled the service once; add every new one here."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

HEADERS = ["Date", "SKU", "Product", "Quantity", "Unit price"]


@dataclass(frozen=True)
class Hostile:
    name: str
    content: bytes
    status: int  # what the service answers
    says: str  # a phrase the answer's detail (or its first error) contains


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="xl/workbook.xml"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="worksheets/sheet1.xml"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
    '<Relationship Id="rId2" Target="sharedStrings.xml"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
    "</Relationships>"
)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def raw_xlsx(
    cells: str, *, strings: list[str], dimension: str | None = None, sheets: str | None = None
) -> bytes:
    """An .xlsx written part by part, as a crafted file is: `cells` is the `<sheetData>` content, with
    `HEADERS` as shared strings 0-4 and `strings` after them."""
    shared = [*HEADERS, *strings]
    header_row = '<row r="1">' + "".join(f'<c r="{c}1" t="s"><v>{i}</v></c>' for i, c in enumerate("ABCDE"))
    sheet = (
        f'<worksheet xmlns="{_MAIN}">'
        + (f'<dimension ref="{dimension}"/>' if dimension else "")
        + f"<sheetData>{header_row}</row>{cells}</sheetData></worksheet>"
    )
    listed = '<sheet name="Sales" sheetId="1" r:id="rId1"/>' if sheets is None else sheets
    parts = {
        "[Content_Types].xml": _CONTENT_TYPES,
        "_rels/.rels": _ROOT_RELS,
        "xl/workbook.xml": f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{listed}</sheets></workbook>',
        "xl/_rels/workbook.xml.rels": _WORKBOOK_RELS,
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": f'<sst xmlns="{_MAIN}" count="{len(shared)}" uniqueCount="{len(shared)}">'
        + "".join(f"<si><t>{text}</t></si>" for text in shared)
        + "</sst>",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _text_cells(rows: range, columns: str, string_index: int) -> str:
    return "".join(
        f'<row r="{r}">'
        + "".join(f'<c r="{c}{r}" t="s"><v>{string_index}</v></c>' for c in columns)
        + "</row>"
        for r in rows
    )


def huge_extent(*, dimension: str = "A1:XFD200000") -> bytes:
    """Headers and one cell at XFD200000: 3.3 billion cells to lay out (the reader aborted the server)."""
    return raw_xlsx('<row r="200000"><c r="XFD200000"><v>1</v></c></row>', strings=[], dimension=dimension)


def lying_extent() -> bytes:
    """The same cell under a `<dimension>` that claims A1:E1: only the memory limit can stop it."""
    return huge_extent(dimension="A1:E1")


def shared_string_bomb(chars: int = 1_000_000, cells: int = 1000) -> bytes:
    """One long text referenced by many cells: a few KB that unpack to gigabytes of cells."""
    return raw_xlsx(_text_cells(range(2, cells + 2), "B", 5), strings=["A" * chars])


def repeated_long_texts(chars: int = 30_000, cells: int = 20_000) -> bytes:
    """A text within a cell's 32,767 characters, repeated until it fills more than the memory allowed."""
    return raw_xlsx(_text_cells(range(2, cells // 2 + 2), "BC", 5), strings=["B" * chars])


def no_sheets() -> bytes:
    """A workbook whose `<sheets/>` is empty."""
    return raw_xlsx("", strings=[], sheets="")


def unknown_products(rows: int = 2000) -> bytes:
    """Rows naming products that do not exist (each once cost a closest-match search)."""
    lines = ["date,sku,product,quantity"] + [
        f"2026-03-01,NOPE-{k:05d},Mystery gadget number {k},1" for k in range(rows)
    ]
    return "\n".join(lines).encode()


def rows_breaking_every_rule(rows: int) -> bytes:
    """Each row breaks three rules (date, product, quantity): once a 66 MB answer for 200,000 rows."""
    lines = ["date,sku,quantity"] + [f"31/31/2026,NOPE-{k:06d},-{k + 1}" for k in range(rows)]
    return "\n".join(lines).encode()


def bare_cr(sku: str) -> bytes:
    """Old Mac line endings: CR alone."""
    return f"date,sku,quantity\r2026-03-01,{sku},2\r2026-03-02,{sku},3\r".encode()


def long_cell(chars: int = 140_000) -> bytes:
    """One CSV cell longer than Python's csv field limit (and a spreadsheet cell)."""
    return f"date,sku,quantity\n2026-03-01,{'C' * chars},1\n".encode()


OVERFLOWING_QUANTITIES = ["inf", "1e30", "9.3e18", "-inf", "1e400", "NaN"]


def overflowing_quantities(sku: str) -> bytes:
    """Quantities that once passed as -9223372036854775808."""
    lines = ["date,sku,quantity"] + [f"2026-03-01,{sku},{q}" for q in OVERFLOWING_QUANTITIES]
    return "\n".join(lines).encode()


def corpus(sku: str) -> list[Hostile]:
    """Every hostile file with the answer it must get (`sku`: a product of the catalogue)."""
    return [
        Hostile("huge declared extent", huge_extent(), 413, "declares an extent"),
        Hostile("huge extent, lying dimension", lying_extent(), 413, "MiB of memory"),
        Hostile("shared-string bomb", shared_string_bomb(), 413, "longer than the 32,767 characters"),
        Hostile("long texts filling memory", repeated_long_texts(), 413, "MiB of memory"),
        Hostile("empty <sheets/>", no_sheets(), 422, "has no sheet"),
        Hostile("2,000 unknown products", unknown_products(), 200, "unknown product"),
        Hostile("bare-CR line endings", bare_cr(sku), 200, ""),
        Hostile("140,000-character CSV cell", long_cell(), 422, "32,767 characters"),
        Hostile("inf / 1e30 / 9.3e18 quantities", overflowing_quantities(sku), 200, "at most 1,000,000"),
    ]
