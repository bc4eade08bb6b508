"""The import template: the headers the importer expects and an example row, as CSV or Excel."""

from __future__ import annotations

import csv
import io

TEMPLATE_HEADERS = ["date", "sku", "product", "quantity", "unit_price", "order"]
TEMPLATE_EXAMPLE = ["2026-03-14 10:30", "BEV-0001", "Sparkling Water Classic", 2, 1.25, "INV-1001"]


def template_csv() -> str:
    text = io.StringIO()
    csv.writer(text).writerows([TEMPLATE_HEADERS, TEMPLATE_EXAMPLE])
    return text.getvalue()


def template_xlsx() -> bytes:
    """One "Sales" sheet; the example's date stays text, as a person would type it."""
    import xlsxwriter  # loaded with the first template (and by the reports' renderer)

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = workbook.add_worksheet("Sales")
    for row, values in enumerate([TEMPLATE_HEADERS, TEMPLATE_EXAMPLE]):
        sheet.write_row(row, 0, values)
    workbook.close()
    return buffer.getvalue()
