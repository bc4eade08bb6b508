"""Render stage, PDF (ReportLab platypus + matplotlib charts): a title block, running header and footer with
"page N of M", tables that split across pages with their header repeated, every text escaped."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from salesflow.services.reports import charts
from salesflow.services.reports.content import ReportContent

_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9, leading=12)
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=8, leading=10)
_HEAD = ParagraphStyle("head", parent=_CELL, textColor=colors.white)
_H1 = ParagraphStyle("h1", parent=_STYLES["Title"], fontSize=18, alignment=0, spaceAfter=4)
# keepWithNext: a heading never stays alone at the foot of a page, it moves with what follows it.
_H2 = ParagraphStyle(
    "h2", parent=_STYLES["Heading2"], fontSize=12, spaceBefore=10, spaceAfter=4, keepWithNext=1
)
_TABLE_STYLE = TableStyle(
    [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f2937")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f4f6")]),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#d1d5db")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
)


def render_pdf(content: ReportContent) -> bytes:
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=1.6 * cm,
        rightMargin=1.6 * cm,
        topMargin=2.0 * cm,
        bottomMargin=1.8 * cm,
        title=content.title,
        author="SalesFlow",
    )
    story: list[Flowable] = _title_block(content)
    if content.sales is not None:
        story += _sales_sections(content)
    if content.stock is not None:
        story += _stock_sections(content)
    if content.forecast is not None:
        story += _forecast_section(content)
    if content.anomalies is not None:
        story += _anomaly_section(content)
    header = f"SalesFlow · {content.title} · {content.period_label}"

    def canvas_maker(*args: Any, **kwargs: Any) -> Canvas:
        return _NumberedCanvas(*args, header=header, **kwargs)

    document.build(story, canvasmaker=canvas_maker)
    return buffer.getvalue()


def _text(value: object) -> str:
    return escape(str(value))


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[float]) -> Table:
    """A table whose header repeats on every page it spans; every cell is escaped text."""
    cells = [[Paragraph(f"<b>{_text(h)}</b>", _HEAD) for h in header]] + [
        [Paragraph(_text(value), _CELL) for value in row] for row in rows
    ]
    table = Table(cells, colWidths=[w * cm for w in widths], repeatRows=1)
    table.setStyle(_TABLE_STYLE)
    return table


def _chart(png: bytes, width_cm: float = 17.5, height_cm: float = 6.2) -> Image:
    return Image(io.BytesIO(png), width=width_cm * cm, height=height_cm * cm)


def _title_block(content: ReportContent) -> list[Flowable]:
    window = content.window
    span = f"{window[0].isoformat()} to {window[1].isoformat()}" if window else ""
    when = content.generated_at.strftime("%Y-%m-%d %H:%M %Z")
    return [
        Paragraph(_text(content.title), _H1),
        Paragraph(f"<b>{_text(content.period_label)}</b> {_text(span)}", _BODY),
        Paragraph(f"Generated {_text(when)}", _BODY),
        Spacer(1, 0.3 * cm),
    ]


def _sales_sections(content: ReportContent) -> list[Flowable]:
    sales = content.sales
    assert sales is not None
    k, c = sales.kpis, sales.comparison

    def change(value: float | None) -> str:
        return "—" if value is None else f"{value:+.1f}%"

    story: list[Flowable] = [Paragraph("Sales", _H2)]
    story.append(
        _table(
            ["Indicator", "This period", f"Previous ({c.start_date} to {c.end_date})", "Change"],
            [
                [
                    "Revenue",
                    _money(k.total_revenue),
                    _money(c.total_revenue),
                    change(c.change_pct.total_revenue),
                ],
                ["Units sold", k.total_quantity, c.total_quantity, change(c.change_pct.total_quantity)],
                [
                    "Transactions",
                    k.total_transactions,
                    c.total_transactions,
                    change(c.change_pct.total_transactions),
                ],
                [
                    "Average ticket",
                    _money(k.average_ticket),
                    _money(c.average_ticket),
                    change(c.change_pct.average_ticket),
                ],
            ],
            [5.0, 3.5, 5.5, 3.5],
        )
    )
    if k.seasonal_hint:
        story.append(Paragraph(_text(k.seasonal_hint), _BODY))
    days = [d.date for d in sales.daily]
    if days:
        revenue = charts.daily_revenue(days, [d.total_revenue for d in sales.daily])
        story += [Paragraph("Daily revenue", _H2), _chart(revenue)]
    story += [
        Paragraph("Top products", _H2),
        _table(
            ["SKU", "Product", "Units", "Revenue", "Share"],
            [
                [p.sku or "", p.name, p.total_quantity, _money(p.revenue), f"{p.share_of_revenue:.1f}%"]
                for p in k.top_products
            ],
            [2.8, 7.2, 2.0, 3.0, 2.5],
        ),
        Paragraph("Sales by weekday", _H2),
    ]
    weekdays = content.revenue_by_weekday
    story.append(
        _chart(charts.bars([w[:3] for w, _ in weekdays], [v for _, v in weekdays], ylabel="Revenue"))
    )
    if sales.by_category:
        story += [
            Paragraph("Sales by category", _H2),
            _table(
                ["Category", "Units", "Revenue", "Share"],
                [
                    [
                        cat.category,
                        cat.total_quantity,
                        _money(cat.total_revenue),
                        f"{cat.share_of_revenue:.1f}%",
                    ]
                    for cat in sales.by_category
                ],
                [7.0, 3.0, 4.0, 3.5],
            ),
        ]
    return story


def _stock_sections(content: ReportContent) -> list[Flowable]:
    stock = content.stock
    assert stock is not None
    k = stock.kpis

    def days(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    story: list[Flowable] = [
        Paragraph(f"Stock as of {stock.as_of.isoformat()}", _H2),
        _table(
            ["Indicator", "Value"],
            [
                ["Stock value", _money(k.total_stock_value)],
                ["Out of stock", k.out_of_stock_count],
                ["Low stock", f"{k.low_stock_count} ({k.low_stock_ratio:.1f}% of products)"],
                ["Dead stock", k.dead_stock_count],
                ["Urgent reorders", k.urgent_reorder_count],
                ["Median coverage (days)", days(k.avg_coverage_days)],
                ["Rotation per year", days(k.rotation_per_year)],
            ],
            [8.0, 9.5],
        ),
        _chart(
            charts.bars(
                ["Out of stock", "Low stock", "Dead stock", "Urgent reorder"],
                [k.out_of_stock_count, k.low_stock_count, k.dead_stock_count, k.urgent_reorder_count],
                ylabel="Products",
            ),
            height_cm=5.5,
        ),
    ]
    attention = [p for p in stock.critical_products if p.status != "DEAD_STOCK"]
    dead = [p for p in stock.critical_products if p.status == "DEAD_STOCK"]
    story += [
        Paragraph("Products that need attention", _H2),
        _table(
            ["SKU", "Product", "Status", "Stock", "Min", "Coverage (days)", "Reorder"],
            [
                [
                    p.sku,
                    p.name,
                    p.status.replace("_", " ").lower(),
                    p.current_stock,
                    p.min_stock,
                    days(p.coverage_days),
                    p.suggested_order_qty or "",
                ]
                for p in attention
            ],
            [2.4, 5.6, 2.6, 1.5, 1.3, 2.3, 1.8],
        ),
        Paragraph("Reorder suggestions", _H2),
        _table(
            ["SKU", "Product", "Stock", "Daily demand", "Reorder point", "Order"],
            [
                [
                    p.sku,
                    p.name,
                    p.current_stock,
                    f"{p.daily_demand:.2f}",
                    p.reorder_point,
                    p.suggested_order_qty,
                ]
                for p in stock.reorder_suggestions
            ],
            [2.4, 6.6, 1.8, 2.4, 2.4, 1.9],
        ),
        Paragraph("Dead stock (no sale for the dead-stock period)", _H2),
        _table(
            ["SKU", "Product", "Stock", "Stock value", "Last sale"],
            [
                [p.sku, p.name, p.current_stock, _money(p.stock_value), p.last_sale_date or "never"]
                for p in dead
            ],
            [2.4, 7.0, 2.0, 3.0, 3.1],
        ),
    ]
    return story


def _forecast_section(content: ReportContent) -> list[Flowable]:
    forecast = content.forecast
    assert forecast is not None
    level = max(forecast.lower, key=int) if forecast.lower else ""
    history = content.sales.daily if content.sales else []
    chart = charts.forecast_band(
        [d.date for d in history],
        [float(d.total_quantity) for d in history],
        forecast.dates,
        forecast.predictions,
        forecast.lower.get(level, forecast.predictions),
        forecast.upper.get(level, forecast.predictions),
        level,
    )
    s = forecast.summary
    return [
        Paragraph(f"Outlook: units over the next {len(forecast.dates)} days", _H2),
        _chart(chart),
        Paragraph(
            _text(
                f"Expected {s.total:,.0f} units ({s.daily_average:,.1f} a day, trend {s.trend}); model"
                f" {forecast.model.name}: {forecast.model.reason}"
            ),
            _BODY,
        ),
    ]


def _anomaly_section(content: ReportContent) -> list[Flowable]:
    anomalies = content.anomalies
    assert anomalies is not None
    story: list[Flowable] = [Paragraph("Unusual days", _H2)]
    if not anomalies.anomalies:
        return [*story, Paragraph("No unusual day in this period.", _BODY)]
    story.append(
        _table(
            ["Date", "Type", "Severity", "Explanation"],
            [
                [a.date, a.type.replace("_", " ").lower(), a.severity, a.explanation]
                for a in anomalies.anomalies
            ],
            [2.4, 2.4, 1.8, 10.9],
        )
    )
    return story


class _NumberedCanvas(Canvas):
    """Draws the running header and "page N of M" once the page count is known."""

    def __init__(self, *args: Any, header: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header = header
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()  # type: ignore[attr-defined]  # ReportLab's documented page-count pattern

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._decorate(total)
            super().showPage()
        super().save()

    def _decorate(self, total: int) -> None:
        width, height = A4
        self.saveState()
        self.setFont("Helvetica", 8)
        self.setFillColor(colors.HexColor("#6b7280"))
        self.drawString(1.6 * cm, height - 1.2 * cm, self._header)
        self.drawRightString(width - 1.6 * cm, 1.0 * cm, f"Page {self.getPageNumber()} of {total}")
        self.restoreState()
