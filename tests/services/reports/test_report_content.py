"""What a report tells a manager: a summary first, money in the shop's currency, units with separators,
windows named by their dates, an empty day said in words, long lists capped for print."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from salesflow.config import Settings
from salesflow.models.analytics import Period, SalesQuery
from salesflow.models.reports import ReportType
from salesflow.resources import open_resources
from salesflow.services.analytics.windows import dates_label
from salesflow.services.reports import pdf
from salesflow.services.reports.content import highlights
from tests.builders import TODAY, pinned_clock


def test_custom_windows_are_named_by_their_dates() -> None:
    assert dates_label(date(2026, 12, 3), date(2026, 12, 3)) == "Thursday 2026-12-03"
    assert dates_label(date(2026, 12, 3), date(2026, 12, 3), "fr") == "Jeudi 2026-12-03"
    assert dates_label(date(2026, 11, 1), date(2026, 11, 30)) == "2026-11-01 to 2026-11-30"


async def test_a_report_leads_with_its_key_figures_in_the_shops_currency(
    make_settings: Callable[..., Settings], store_file
) -> None:
    async with open_resources(make_settings(shop_country="FR"), clock=pinned_clock) as resources:
        gatherer = resources.reports.gatherer
        now = pinned_clock()
        combined = await gatherer.gather(
            ReportType.COMBINED, SalesQuery(period=Period.WEEKLY), scope="admin", generated_at=now
        )
        lines = highlights(combined)
        assert lines[0].startswith("Revenue €") and "on the previous 7 days" in lines[0]
        assert any(line.startswith("Stock worth €") and f"as of {TODAY}" in line for line in lines)
        assert any(line.startswith("Next 30 days: about") and "units (€" in line for line in lines)
        assert re.search(r"\d,\d{3}", " ".join(lines))  # thousands separators
        stock = await gatherer.gather(
            ReportType.STOCK, SalesQuery(period=Period.WEEKLY), scope="admin", generated_at=now
        )
        assert stock.period_label == f"as of {TODAY}"  # not "Last 7 days": stock is as of today

        empty_day = TODAY + timedelta(days=30)  # after the demo history: no sale at all
        nothing = await gatherer.gather(
            ReportType.SALES,
            SalesQuery(start_date=empty_day, end_date=empty_day),
            scope="admin",
            generated_at=now,
        )
        assert highlights(nothing) == [f"No sales in {dates_label(empty_day, empty_day).lower()}."]
        assert pdf.render_pdf(nothing).startswith(b"%PDF")
