"""Numbers for people (e-mails, alert messages, reports): money in the shop's currency, units and counts with
thousands separators, and nothing absurd (coverage "over a year", never 1e24 days)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_symbol,
    get_territory_currencies,
    is_currency,
)

LOCALE = "en"


def currency_of(country: str | None) -> str | None:
    """The currency in use today in an ISO country (GB → GBP), None when unknown."""
    if not country:
        return None
    found = get_territory_currencies(country)
    return found[0] if found else None


def known_currency(code: str) -> str:
    """An ISO 4217 code, upper-cased; ValueError for one that does not exist."""
    upper = code.strip().upper()
    if not is_currency(upper):
        raise ValueError(f"unknown currency {code!r} (an ISO 4217 code such as GBP, EUR, USD)")
    return upper


@dataclass(frozen=True)
class Formats:
    """How a shop's numbers are written; `currency` None writes money as a plain number."""

    currency: str | None = None

    def money(self, value: float) -> str:
        if not math.isfinite(value):
            return "—"
        if self.currency is None:
            return format_decimal(round(value, 2), format="#,##0.00", locale=LOCALE)
        return format_currency(value, self.currency, locale=LOCALE)

    @property
    def spreadsheet_money(self) -> str:
        """The number format of money cells in Excel files (the currency's symbol, when known)."""
        if self.currency is None:
            return "#,##0.00"
        symbol = get_currency_symbol(self.currency, locale=LOCALE).replace('"', "")
        return f'"{symbol}"#,##0.00'

    @staticmethod
    def units(value: float) -> str:
        """Units with separators: a whole count as it is, a fraction (a daily rate) as `rate` writes it."""
        if math.isfinite(value) and value == int(value):
            return format_decimal(value, format="#,##0", locale=LOCALE)
        return Formats.rate(value)

    @staticmethod
    def rate(value: float) -> str:
        """Units a day: whole units with separators from 10, one decimal from 1, two digits below."""
        if not math.isfinite(value):
            return "—"
        if abs(value) >= 10:
            return format_decimal(round(value), format="#,##0", locale=LOCALE)
        return f"{value:.2g}" if abs(value) < 1 else f"{value:.1f}"
