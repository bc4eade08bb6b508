"""Render stage, Excel (XlsxWriter): a sheet per section, typed cells (dates as dates, money formatted),
frozen headers, auto-filters, column widths and native charts. Text is always written as text: a product named
"=HYPERLINK(…)" or "+1" stays a string and can never run as a formula."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from salesflow.services.reports.content import ReportContent

Column = tuple[str, str, float]  # header, kind (text | int | money | number | pct | date), width


def render_xlsx(content: ReportContent) -> bytes:
    buffer = io.BytesIO()
    # No string is ever turned into a formula, a URL or a number behind the caller's back.
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    formats = _formats(workbook, money=content.formats.spreadsheet_money)
    _summary(workbook, formats, content)
    if content.sales is not None:
        _sales(workbook, formats, content)
    if content.stock is not None:
        _stock(workbook, formats, content)
    if content.forecast is not None:
        _forecast(workbook, formats, content)
    if content.anomalies is not None:
        rows = [
            [a.date, a.type, a.severity, a.value, a.expected, a.explanation]
            for a in content.anomalies.anomalies
        ]
        columns: list[Column] = [
            ("Date", "date", 12),
            ("Type", "text", 12),
            ("Severity", "text", 10),
            ("Value", "number", 10),
            ("Expected", "number", 10),
            ("Explanation", "text", 90),
        ]
        _table(workbook.add_worksheet("Anomalies"), formats, columns, rows)
    workbook.close()
    return buffer.getvalue()


def _formats(workbook: Workbook, *, money: str) -> dict[str, Any]:
    return {
        "header": workbook.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F2937"}),
        "title": workbook.add_format({"bold": True, "font_size": 16}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "money": workbook.add_format({"num_format": money}),
        "int": workbook.add_format({"num_format": "#,##0"}),
        "number": workbook.add_format({"num_format": "#,##0.00"}),
        "pct": workbook.add_format({"num_format": "0.0"}),
        "text": None,
    }


def _write(sheet: Worksheet, row: int, col: int, value: object, kind: str, formats: dict[str, Any]) -> None:
    if value is None or value == "":
        sheet.write_blank(row, col, None)
    elif kind == "text" or isinstance(value, str):
        sheet.write_string(row, col, str(value))
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, value.replace(tzinfo=None), formats["datetime"])
    elif isinstance(value, date):
        sheet.write_datetime(row, col, datetime.combine(value, datetime.min.time()), formats["date"])
    else:
        sheet.write_number(row, col, float(value), formats.get(kind))  # type: ignore[arg-type]


def _table(
    sheet: Worksheet, formats: dict[str, Any], columns: Sequence[Column], rows: Sequence[Sequence[object]]
) -> None:
    """Header row (frozen, filtered), typed cells, widths."""
    for col, (header, kind, width) in enumerate(columns):
        sheet.write_string(0, col, header, formats["header"])
        sheet.set_column(col, col, width)
        for row, values in enumerate(rows, start=1):
            _write(sheet, row, col, values[col], kind, formats)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)


def _summary(workbook: Workbook, formats: dict[str, Any], content: ReportContent) -> None:
    sheet = workbook.add_worksheet("Summary")
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 3, 18)
    sheet.write_string(0, 0, content.title, formats["title"])
    sheet.write_string(1, 0, content.period_label)
    if content.window and content.window[0].isoformat() not in content.period_label:
        _write(sheet, 1, 1, content.window[0], "date", formats)
        _write(sheet, 1, 2, content.window[1], "date", formats)
    sheet.write_string(2, 0, "Generated")
    _write(sheet, 2, 1, content.generated_at, "datetime", formats)
    sheet.write_string(2, 2, content.generated_at.tzname() or "")
    row = 4
    if content.sales is not None:
        k, c = content.sales.kpis, content.sales.comparison
        for label, value, previous, kind in (
            ("Revenue", k.total_revenue, c.total_revenue, "money"),
            ("Units sold", k.total_quantity, c.total_quantity, "int"),
            ("Transactions", k.total_transactions, c.total_transactions, "int"),
            ("Average ticket", k.average_ticket, c.average_ticket, "money"),
        ):
            sheet.write_string(row, 0, label)
            _write(sheet, row, 1, value, kind, formats)
            _write(sheet, row, 2, previous, kind, formats)
            row += 1
        sheet.write_string(3, 1, "This period", formats["header"])
        sheet.write_string(3, 2, "Previous period", formats["header"])
    if content.stock is not None:
        k2 = content.stock.kpis
        for label, value, kind in (
            ("Stock value", k2.total_stock_value, "money"),
            ("Out of stock", k2.out_of_stock_count, "int"),
            ("Low stock", k2.low_stock_count, "int"),
            ("Dead stock", k2.dead_stock_count, "int"),
            ("Urgent reorders", k2.urgent_reorder_count, "int"),
        ):
            sheet.write_string(row, 0, label)
            _write(sheet, row, 1, value, kind, formats)
            row += 1


def _sales(workbook: Workbook, formats: dict[str, Any], content: ReportContent) -> None:
    sales = content.sales
    assert sales is not None
    daily = workbook.add_worksheet("Daily")
    rows = [[d.date, d.total_revenue, d.total_quantity, d.total_transactions] for d in sales.daily]
    _table(
        daily,
        formats,
        [("Date", "date", 12), ("Revenue", "money", 14), ("Units", "int", 10), ("Transactions", "int", 13)],
        rows,
    )
    if rows:
        chart = workbook.add_chart({"type": "column"})
        chart.add_series(
            {
                "name": "Revenue",
                "categories": ["Daily", 1, 0, len(rows), 0],
                "values": ["Daily", 1, 1, len(rows), 1],
            }
        )
        chart.set_title({"name": "Daily revenue"})
        chart.set_legend({"none": True})
        daily.insert_chart("F2", chart, {"x_scale": 1.6, "y_scale": 1.2})
    _table(
        workbook.add_worksheet("Top products"),
        formats,
        [
            ("SKU", "text", 14),
            ("Product", "text", 40),
            ("Units", "int", 10),
            ("Revenue", "money", 14),
            ("Share %", "pct", 10),
        ],
        [[p.sku, p.name, p.total_quantity, p.revenue, p.share_of_revenue] for p in sales.kpis.top_products],
    )
    weekdays = workbook.add_worksheet("By weekday")
    _table(weekdays, formats, [("Weekday", "text", 14), ("Revenue", "money", 14)], content.revenue_by_weekday)
    chart = workbook.add_chart({"type": "column"})
    chart.add_series(
        {"name": "Revenue", "categories": ["By weekday", 1, 0, 7, 0], "values": ["By weekday", 1, 1, 7, 1]}
    )
    chart.set_legend({"none": True})
    weekdays.insert_chart("D2", chart)
    if sales.by_category:
        _table(
            workbook.add_worksheet("By category"),
            formats,
            [
                ("Category", "text", 24),
                ("Units", "int", 10),
                ("Revenue", "money", 14),
                ("Share %", "pct", 10),
            ],
            [[c.category, c.total_quantity, c.total_revenue, c.share_of_revenue] for c in sales.by_category],
        )


def _stock(workbook: Workbook, formats: dict[str, Any], content: ReportContent) -> None:
    stock = content.stock
    assert stock is not None
    columns: list[Column] = [
        ("SKU", "text", 14),
        ("Product", "text", 36),
        ("Status", "text", 14),
        ("Stock", "int", 9),
        ("Min", "int", 7),
        ("Unit price", "money", 11),
        ("Stock value", "money", 12),
        ("Last sale", "date", 12),
        ("Coverage (days)", "number", 15),
        ("Daily demand", "number", 13),
        ("Reorder point", "int", 13),
        ("Suggested order", "int", 15),
        ("Sales at risk", "money", 13),
        ("ABC", "text", 6),
    ]

    def row(p: Any) -> list[object]:
        return [
            p.sku,
            p.name,
            p.status,
            p.current_stock,
            p.min_stock,
            p.unit_price,
            p.stock_value,
            p.last_sale_date,
            p.coverage_days,
            p.daily_demand,
            p.reorder_point,
            p.suggested_order_qty,
            p.sales_at_risk,
            p.abc_class,
        ]

    critical = workbook.add_worksheet("Critical products")
    _table(critical, formats, columns, [row(p) for p in stock.critical_products])
    _table(workbook.add_worksheet("Reorder"), formats, columns, [row(p) for p in stock.reorder_suggestions])
    counts = workbook.add_worksheet("Status counts")
    k = stock.kpis
    statuses = [
        ("Out of stock", k.out_of_stock_count),
        ("Low stock", k.low_stock_count),
        ("Dead stock", k.dead_stock_count),
        ("Urgent reorder", k.urgent_reorder_count),
    ]
    _table(counts, formats, [("Status", "text", 16), ("Products", "int", 10)], statuses)
    chart = workbook.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": "Products",
            "categories": ["Status counts", 1, 0, 4, 0],
            "values": ["Status counts", 1, 1, 4, 1],
        }
    )
    chart.set_legend({"none": True})
    counts.insert_chart("D2", chart)


def _forecast(workbook: Workbook, formats: dict[str, Any], content: ReportContent) -> None:
    forecast = content.forecast
    assert forecast is not None
    levels = sorted(forecast.lower, key=int)
    columns: list[Column] = [("Date", "date", 12), ("Forecast (units)", "number", 16)]
    for level in levels:
        columns += [(f"Low {level}%", "number", 11), (f"High {level}%", "number", 11)]
    rows = [
        [day, value, *[bound for lv in levels for bound in (forecast.lower[lv][i], forecast.upper[lv][i])]]
        for i, (day, value) in enumerate(zip(forecast.dates, forecast.predictions, strict=True))
    ]
    sheet = workbook.add_worksheet("Forecast")
    _table(sheet, formats, columns, rows)
    chart = workbook.add_chart({"type": "line"})
    for col, (name, _, _) in enumerate(columns[1:], start=1):
        chart.add_series(
            {
                "name": name,
                "categories": ["Forecast", 1, 0, len(rows), 0],
                "values": ["Forecast", 1, col, len(rows), col],
            }
        )
    chart.set_title({"name": f"Units, next {len(rows)} days"})
    sheet.insert_chart(f"{chr(ord('A') + len(columns) + 1)}2", chart, {"x_scale": 1.5, "y_scale": 1.2})
