"""Render stage, PDF (ReportLab platypus + matplotlib charts): a title block, running header and footer with
"page N of M", tables that split across pages with their header repeated, every text escaped."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from salesflow.models.analytics import StockStatus
from salesflow.services.analytics.sales import percent_change
from salesflow.services.analytics.stock import describe_coverage
from salesflow.services.reports import charts
from salesflow.services.reports.content import ReportContent, highlights, previous_label

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


PDF_MAX_ROWS = 25  # a long list shows its most urgent or valuable rows; the Excel file keeps every row


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
    story: list[Flowable] = _title_block(content) + _summary_page(content) + [PageBreak()]
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


def _more(shown: int, total: int, what: str) -> list[Flowable]:
    """The line under a capped list: how many rows the Excel file has beyond it."""
    if total <= shown:
        return []
    return [Paragraph(_text(f"{total - shown:,} more {what}: see the Excel version of this report."), _BODY)]


def _change(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%"


def _title_block(content: ReportContent) -> list[Flowable]:
    window = content.window
    label = content.period_label
    # A label that names its dates already is not followed by them again.
    span = (
        f" ({window[0].isoformat()} to {window[1].isoformat()})"
        if window and window[0].isoformat() not in label
        else ""
    )
    when = content.generated_at.strftime("%Y-%m-%d %H:%M %Z")
    return [
        Paragraph(_text(content.title), _H1),
        Paragraph(f"<b>{_text(label)}</b>{_text(span)}", _BODY),
        Paragraph(f"Generated {_text(when)}", _BODY),
        Spacer(1, 0.3 * cm),
    ]


def _summary_page(content: ReportContent) -> list[Flowable]:
    """Page one: the key lines, the KPIs against the previous period and a year before, what to reorder,
    the outlook and the unusual days."""
    f = content.formats
    story: list[Flowable] = [Paragraph("At a glance", _H2)]
    story += [Paragraph(f"• {_text(line)}", _BODY) for line in highlights(content)]
    sales = content.sales
    if sales is not None and sales.kpis.total_transactions:
        k, c, y = sales.kpis, sales.comparison, content.last_year
        measures: list[tuple[str, str, Callable[[float], str]]] = [
            ("Revenue", "total_revenue", f.money),
            ("Units sold", "total_quantity", f.units),
            ("Sales", "total_transactions", f.units),
            ("Average sale", "average_ticket", f.money),
        ]
        rows: list[list[object]] = []
        for label, name, shown in measures:
            value, before = getattr(k, name), getattr(c, name)
            row: list[object] = [label, shown(value), shown(before), _change(getattr(c.change_pct, name))]
            if y is not None:
                then = getattr(y.kpis, name)
                row += [shown(then), _change(percent_change(value, then))]
            rows.append(row)
        previous = previous_label(content).removeprefix("the ").capitalize()
        header = ["", "This period", previous, "Change"] + (["A year before", "Change"] if y else [])
        widths = [3.0, 3.0, 3.0, 2.0] + ([3.3, 2.0] if y else [])
        story += [Spacer(1, 0.2 * cm), _table(header, rows, widths)]
    if content.stock is not None:
        orders = sorted(
            (p for p in content.stock.reorder_suggestions if p.suggested_order_qty > 0),
            key=lambda p: (-p.sales_at_risk, p.product_id),
        )
        if orders:
            story += [
                Paragraph("Reorder first", _H2),
                _table(
                    ["SKU", "Product", "Order", "Order value", "Sales at risk"],
                    [
                        [
                            p.sku,
                            p.name,
                            f.units(p.suggested_order_qty),
                            f.money(p.suggested_order_qty * p.unit_price),
                            f.money(p.sales_at_risk),
                        ]
                        for p in orders[:8]
                    ],
                    [2.4, 7.0, 1.8, 3.0, 3.3],
                ),
                *_more(8, len(orders), "products to reorder"),
            ]
    if content.anomalies is not None and content.anomalies.anomalies:
        story.append(Paragraph("Unusual days", _H2))
        story += [
            Paragraph(_text(f"{a.date}: {a.explanation}"), _BODY) for a in content.anomalies.anomalies[:3]
        ]
    return story


def _sales_sections(content: ReportContent) -> list[Flowable]:
    sales = content.sales
    assert sales is not None
    f = content.formats
    k = sales.kpis
    story: list[Flowable] = [Paragraph("Sales", _H2)]
    if not k.total_transactions:
        return [*story, Paragraph(_text(f"No sales in {content.period_label.lower()}."), _BODY)]
    if k.seasonal_hint:
        story.append(Paragraph(_text(k.seasonal_hint), _BODY))
    days = [d.date for d in sales.daily]
    if len(days) > 1:
        revenue = charts.daily_revenue(days, [d.total_revenue for d in sales.daily])
        story += [Paragraph("Daily revenue", _H2), _chart(revenue)]
    story += [
        Paragraph("Top products", _H2),
        _table(
            ["SKU", "Product", "Units", "Revenue", "Share"],
            [
                [
                    p.sku or "",
                    p.name,
                    f.units(p.total_quantity),
                    f.money(p.revenue),
                    f"{p.share_of_revenue:.1f}%",
                ]
                for p in k.top_products
            ],
            [2.8, 7.2, 2.0, 3.0, 2.5],
        ),
    ]
    if len(days) >= 7:
        weekdays = content.revenue_by_weekday
        story += [
            Paragraph("Sales by weekday", _H2),
            _chart(charts.bars([w[:3] for w, _ in weekdays], [v for _, v in weekdays], ylabel="Revenue")),
        ]
    if sales.by_category:
        story += [
            Paragraph("Sales by category", _H2),
            _table(
                ["Category", "Units", "Revenue", "Share"],
                [
                    [
                        cat.category,
                        f.units(cat.total_quantity),
                        f.money(cat.total_revenue),
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
    f = content.formats
    k = stock.kpis
    rotation = "—" if k.rotation_per_year is None else f"{k.rotation_per_year:.2g}"
    story: list[Flowable] = [
        Paragraph(f"Stock as of {stock.as_of.isoformat()}", _H2),
        _table(
            ["Indicator", "Value"],
            [
                ["Stock value", f.money(k.total_stock_value)],
                ["Out of stock", f.units(k.out_of_stock_count)],
                ["Low stock", f"{f.units(k.low_stock_count)} ({k.low_stock_ratio:.1f}% of products)"],
                ["Dead stock", f.units(k.dead_stock_count)],
                ["Urgent reorders", f.units(k.urgent_reorder_count)],
                ["Median coverage", describe_coverage(k.avg_coverage_days)],
                ["Stock turns per year", rotation],
            ],
            [8.0, 9.5],
        ),
    ]
    by_risk = sorted(stock.critical_products, key=lambda p: (-p.sales_at_risk, p.product_id))
    attention = [p for p in by_risk if p.status != StockStatus.DEAD_STOCK]
    story.append(Paragraph("Products that need attention, most sales at risk first", _H2))
    if not attention:
        story.append(Paragraph("No product is out of stock or below its minimum.", _BODY))
    else:
        story += [
            _table(
                ["SKU", "Product", "Status", "Stock", "Min", "Coverage", "Order", "Sales at risk"],
                [
                    [
                        p.sku,
                        p.name,
                        p.status.replace("_", " ").lower(),
                        f.units(p.current_stock),
                        f.units(p.min_stock),
                        describe_coverage(p.coverage_days),
                        f.units(p.suggested_order_qty) if p.suggested_order_qty else "",
                        f.money(p.sales_at_risk),
                    ]
                    for p in attention[:PDF_MAX_ROWS]
                ],
                [2.0, 4.6, 2.0, 1.4, 1.2, 2.0, 1.5, 2.6],
            ),
            *_more(PDF_MAX_ROWS, len(attention), "products that need attention"),
        ]
    to_order = sorted(stock.reorder_suggestions, key=lambda p: (-p.sales_at_risk, p.product_id))
    story += [
        Paragraph("Reorder suggestions", _H2),
        _table(
            ["SKU", "Product", "Stock", "Daily demand", "Reorder point", "Order", "Order value"],
            [
                [
                    p.sku,
                    p.name,
                    f.units(p.current_stock),
                    f.units(p.daily_demand),
                    f.units(p.reorder_point),
                    f.units(p.suggested_order_qty),
                    f.money(p.suggested_order_qty * p.unit_price),
                ]
                for p in to_order[:PDF_MAX_ROWS]
            ],
            [2.2, 5.4, 1.6, 2.0, 2.1, 1.6, 2.4],
        ),
        *_more(PDF_MAX_ROWS, len(to_order), "reorder suggestions"),
    ]
    dead = sorted(
        (p for p in stock.critical_products if p.status == StockStatus.DEAD_STOCK),
        key=lambda p: (-p.stock_value, p.product_id),
    )
    sold_once = [p for p in dead if p.last_sale_date is not None]
    never = [p for p in dead if p.last_sale_date is None]
    story += [
        Paragraph("Dead stock (no sale for the dead-stock period), most value first", _H2),
        _table(
            ["SKU", "Product", "Stock", "Stock value", "Last sale"],
            [
                [p.sku, p.name, f.units(p.current_stock), f.money(p.stock_value), p.last_sale_date]
                for p in sold_once[:PDF_MAX_ROWS]
            ],
            [2.4, 7.0, 2.0, 3.0, 3.1],
        ),
        *_more(PDF_MAX_ROWS, len(sold_once), "dead-stock products"),
    ]
    if never:
        value = sum(p.stock_value for p in never)
        story.append(
            Paragraph(
                _text(
                    f"{len(never):,} products in stock have never sold ({f.money(value)});"
                    " the Excel file lists them."
                ),
                _BODY,
            )
        )
    return story


def _forecast_section(content: ReportContent) -> list[Flowable]:
    forecast = content.forecast
    assert forecast is not None
    f = content.formats
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
    money = f" worth about {f.money(sum(forecast.revenue))}" if forecast.revenue is not None else ""
    band = f" The shaded band is where {level}% of days are expected to fall." if level else ""
    return [
        Paragraph(f"Outlook: the next {len(forecast.dates)} days", _H2),
        _chart(chart),
        Paragraph(
            _text(
                f"About {f.units(s.total)} units{money} ({f.units(s.daily_average)} a day);"
                f" the trend is {s.trend}.{band}"
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
    ranked = sorted(anomalies.anomalies, key=lambda a: (-abs(a.score), a.date))[:PDF_MAX_ROWS]
    story.append(
        _table(
            ["Date", "Type", "Severity", "Explanation"],
            [
                [a.date, a.type.replace("_", " ").lower(), a.severity, a.explanation]
                for a in sorted(ranked, key=lambda a: a.date)
            ],
            [2.4, 2.4, 1.8, 10.9],
        )
    )
    return story + _more(PDF_MAX_ROWS, len(anomalies.anomalies), "unusual days")


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
