"""Parsing stage of the import: find the header row, map columns, turn cells into typed sale rows.

Every problem is collected in one pass as `{row, column, value, reason}`, with the row number a person sees
in the spreadsheet (1-based, title rows included). Nothing is guessed silently: dates whose day/month order
cannot be told, and columns mixing real dates with text dates, are reported.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import pandas as pd

from salesflow.services.excel_import.reading import Table

FIELDS = ("date", "sku", "product", "quantity", "unit_price", "order")
REQUIRED = ("quantity",)
ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "sale date", "date de vente", "invoice date", "invoicedate", "day", "jour", "sold at"),
    "sku": (
        "sku",
        "code",
        "product code",
        "stockcode",
        "stock code",
        "reference",
        "ref",
        "code produit",
        "code article",
        "item code",
    ),
    "product": (
        "product",
        "name",
        "product name",
        "description",
        "produit",
        "nom",
        "article",
        "designation",
        "libelle",
        "item",
    ),
    "quantity": ("quantity", "qty", "quantite", "qte", "units", "unites", "quantity sold"),
    "unit_price": ("unit price", "unitprice", "price", "prix unitaire", "prix", "pu", "unit cost"),
    "order": (
        "order",
        "order id",
        "invoice",
        "invoiceno",
        "invoice no",
        "invoice number",
        "commande",
        "facture",
        "numero de facture",
        "ticket",
        "receipt",
        "sale id",
    ),
}
_DAY_MONTH = re.compile(
    r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"
)


def normalise(header: object) -> str:
    """Case-, accent-, punctuation- and spacing-insensitive form of a header."""
    text = unicodedata.normalize("NFKD", str(header)).encode("ascii", "ignore").decode().casefold()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


_ALIAS_TO_FIELD = {normalise(alias): name for name, aliases in ALIASES.items() for alias in aliases}


@dataclass
class Issue:
    row: int
    column: str | None
    value: Any
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": _jsonable(self.value), "reason": self.reason}


@dataclass
class ImportRow:
    """A valid row, ready to be written."""

    row: int
    product_id: int
    sku: str
    name: str
    quantity: int
    unit_price: float | None
    sold_at: datetime | None
    order: str | None


@dataclass
class Parsed:
    header_row: int
    columns: list[str]
    mapping: dict[str, str]
    ignored: list[str]
    total_rows: int
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def find_header(rows: list[list[object]], mapping: dict[str, str] | None) -> int:
    """Index of the first row that names the needed columns (title rows above it are skipped)."""
    wanted = {normalise(v) for v in (mapping or {}).values()}
    for index, row in enumerate(rows[:30]):
        cells = {normalise(cell) for cell in row if str(cell).strip()}
        if wanted and wanted <= cells:
            return index
        if not wanted and len({_ALIAS_TO_FIELD[c] for c in cells if c in _ALIAS_TO_FIELD}) >= 2:
            return index
    return -1


def map_columns(
    headers: list[str], mapping: dict[str, str] | None
) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Our field → column index; an explicit mapping wins, then aliases. Also the unused headers."""
    positions: dict[str, int] = {}
    by_name = {normalise(h): i for i, h in enumerate(headers) if str(h).strip()}
    for name, header in (mapping or {}).items():
        if normalise(header) in by_name:
            positions[name] = by_name[normalise(header)]
    for i, header in enumerate(headers):
        field_name = _ALIAS_TO_FIELD.get(normalise(header))
        if field_name is not None and field_name not in positions and i not in positions.values():
            positions[field_name] = i
    used = set(positions.values())
    shown = {name: str(headers[i]) for name, i in positions.items()}
    ignored = [str(h) for i, h in enumerate(headers) if i not in used and str(h).strip()]
    return positions, shown, ignored


def parse(
    table: Table,
    products: pd.DataFrame,
    *,
    mapping: dict[str, str] | None = None,
    date_format: str | None = None,
    decimal_separator: str | None = None,
) -> Parsed:
    """Validate every row against the catalogue; see the module docstring."""
    if mapping:
        unknown = sorted(set(mapping) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown mapping fields {unknown}; known: {', '.join(FIELDS)}")
    header_index = find_header(table.rows, mapping)
    if header_index < 0:
        expected = "; ".join(f"{name}: {', '.join(aliases[:3])}" for name, aliases in ALIASES.items())
        raise ValueError(f"no header row found in the first 30 rows (expected headers such as {expected})")
    headers = [str(cell).strip() for cell in table.rows[header_index]]
    positions, shown, ignored = map_columns(headers, mapping)
    parsed = Parsed(
        header_row=header_index + 1, columns=headers, mapping=shown, ignored=ignored, total_rows=0
    )
    missing = [name for name in REQUIRED if name not in positions]
    if "sku" not in positions and "product" not in positions:
        missing.append("sku or product")
    if missing:
        raise ValueError(
            f"missing column(s): {', '.join(missing)}; found: {', '.join(h for h in headers if h)}"
        )
    lookup = _Catalogue(products)
    day_first = _day_order(table.rows[header_index + 1 :], positions.get("date"), date_format, parsed)
    seen: Counter[tuple[object, ...]] = Counter()
    for offset, row in enumerate(table.rows[header_index + 1 :], start=header_index + 2):
        if not any(str(cell).strip() for cell in row):
            continue  # empty rows are skipped
        parsed.total_rows += 1
        cells = {name: row[i] if i < len(row) else "" for name, i in positions.items()}
        key = tuple(cells.values())
        seen[key] += 1
        if seen[key] == 2:
            parsed.warnings.append(Issue(offset, None, None, "exact duplicate of an earlier row"))
        _parse_row(offset, cells, lookup, shown, day_first, decimal_separator, parsed)
    return parsed


def _parse_row(
    row: int,
    cells: dict[str, object],
    lookup: _Catalogue,
    shown: dict[str, str],
    day_first: bool | None,
    decimal_separator: str | None,
    parsed: Parsed,
) -> None:
    before = len(parsed.errors)

    def fail(name: str, reason: str) -> None:
        parsed.errors.append(Issue(row, shown.get(name, name), cells.get(name), reason))

    quantity = _number(cells.get("quantity"), decimal_separator)
    if quantity is None:
        fail("quantity", "quantity is missing or not a number")
    elif quantity < 0:
        fail("quantity", "negative quantity (a return?): returns cannot be imported as sales")
    elif quantity == 0 or quantity != int(quantity):
        fail("quantity", "quantity must be a whole number of at least 1")
    price = None
    if "unit_price" in cells and str(cells["unit_price"]).strip():
        price = _number(cells["unit_price"], decimal_separator)
        if price is None or price < 0:
            fail("unit_price", "unit price must be a number of at least 0")
    sold_at = None
    if "date" in cells:
        sold_at, problem = _date(cells["date"], day_first)
        if problem:
            fail("date", problem)
    product = lookup.find(cells.get("sku"), cells.get("product"))
    if isinstance(product, str):
        fail("sku" if "sku" in cells else "product", product)
    if len(parsed.errors) == before and not isinstance(product, str) and quantity is not None:
        order = str(cells.get("order", "")).strip() or None
        parsed.rows.append(
            ImportRow(row, product[0], product[1], product[2], int(quantity), price, sold_at, order)
        )


class _Catalogue:
    """Products by SKU and by name, with suggestions for unknown ones."""

    def __init__(self, products: pd.DataFrame) -> None:
        triples = list(
            zip(
                products["product_id"].tolist(),
                products["sku"].tolist(),
                products["name"].tolist(),
                strict=True,
            )
        )
        self.by_sku = {str(sku).casefold(): (int(pid), str(sku), str(name)) for pid, sku, name in triples}
        self.by_name = {normalise(name): (int(pid), str(sku), str(name)) for pid, sku, name in triples}
        self.labels = [f"{sku} ({name})" for _, sku, name in triples]

    def find(self, sku: object, name: object) -> tuple[int, str, str] | str:
        sku_text, name_text = str(sku or "").strip(), str(name or "").strip()
        if sku_text.endswith(".0") and sku_text[:-2].isdigit():
            sku_text = sku_text[:-2]  # a numeric code read as a float
        if sku_text and sku_text.casefold() in self.by_sku:
            return self.by_sku[sku_text.casefold()]
        if name_text and normalise(name_text) in self.by_name:
            return self.by_name[normalise(name_text)]
        if not sku_text and not name_text:
            return "no SKU or product name"
        close = difflib.get_close_matches(f"{sku_text} ({name_text})".strip(), self.labels, n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        return f"unknown product {sku_text or name_text!r}{hint}"


def _number(value: object, decimal_separator: str | None) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value or "").strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if decimal_separator == ",":
        text = text.replace(".", "").replace(",", ".")
    elif decimal_separator == ".":
        text = text.replace(",", "")
    elif "," in text and "." in text:  # the last one is the decimal separator
        text = (
            text.replace(".", "").replace(",", ".")
            if text.rfind(",") > text.rfind(".")
            else text.replace(",", "")
        )
    elif text.count(",") == 1:
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


def _day_order(
    rows: list[list[object]], column: int | None, date_format: str | None, parsed: Parsed
) -> bool | None:
    """Whether text dates are day-first: from `date_format`, else from the data; None when unknown."""
    if column is None:
        return None
    if date_format:
        return date_format.upper().startswith("DD")
    firsts, seconds, real, text_rows = [], [], 0, []
    for offset, row in enumerate(rows):
        cell = row[column] if column < len(row) else ""
        if isinstance(cell, date | datetime):
            real += 1
            continue
        if str(cell).strip():
            text_rows.append(offset)
        match = _DAY_MONTH.match(str(cell))
        if match:
            firsts.append(int(match.group(1)))
            seconds.append(int(match.group(2)))
    if real and text_rows:
        reason = (
            f"the date column mixes real dates with {len(text_rows)} text dates: check how they were typed"
        )
        parsed.warnings.append(Issue(0, None, None, reason))
    if not firsts:
        return None
    if max(firsts) > 12 >= max(seconds):
        return True
    if max(seconds) > 12 >= max(firsts):
        return False
    return None  # every text date could be read both ways: say so for each


def _date(value: object, day_first: bool | None) -> tuple[datetime | None, str | None]:
    if isinstance(value, datetime):
        return value, None
    if isinstance(value, date):
        return datetime.combine(value, time()), None
    text = str(value or "").strip()
    if not text:
        return None, None  # no date: the sale gets the import's time
    try:
        return datetime.fromisoformat(text), None
    except ValueError:
        pass
    match = _DAY_MONTH.match(text)
    if not match:
        return None, "not a date"
    a, b, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if day_first is None and a <= 12 and b <= 12 and a != b:
        return None, "ambiguous date: day and month cannot be told apart (give date_format)"
    day, month = (a, b) if day_first in (True, None) else (b, a)
    year = year + 2000 if year < 100 else year
    hour, minute, second = (int(match.group(i) or 0) for i in (4, 5, 6))
    try:
        return datetime(year, month, day, hour, minute, second), None
    except ValueError:
        return None, "not a valid calendar date"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
