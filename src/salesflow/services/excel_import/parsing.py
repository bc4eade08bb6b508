"""Parsing stage of the import: find the header row, map columns, turn cells into typed sale rows.

Every problem is collected in one pass as `{row, column, value, reason}`, with the row number a person sees
in the spreadsheet (1-based, title rows included). Nothing is guessed silently: dates whose day/month order
cannot be told, and columns mixing real dates with text dates, are reported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from salesflow.errors import InvalidInput
from salesflow.services.excel_import.reading import Table

FIELDS = ("date", "sku", "product", "quantity", "unit_price", "order")
# Every number is finite and within range, or its row is an error: Java stores quantities as 32-bit ints.
MAX_QUANTITY = 1_000_000
MAX_UNIT_PRICE = 1_000_000_000.0
# Issues are listed for the first rows that have them; past that, each rule's rows are only counted, so that a
# file of 200,000 bad rows answers (and is stored) in kilobytes.
MAX_LISTED_ISSUES = 200
EARLIEST_SALE, LATEST_SALE = datetime(1970, 1, 1), datetime(2100, 1, 1)
HINTED_UNKNOWNS = 50  # distinct unknown products that get "closest" suggestions; the rest are only named
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


VALID_COLUMNS = ("row", "product_id", "sku", "name", "quantity", "unit_price", "sold_at", "order")


@dataclass
class Parsed:
    header_row: int
    columns: list[str]
    mapping: dict[str, str]
    ignored: list[str]
    total_rows: int
    # The valid rows as columns (`VALID_COLUMNS`): a hundred thousand rows stay cheap to keep and store.
    valid: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in VALID_COLUMNS})
    errors: list[Issue] = field(default_factory=list)  # the first MAX_LISTED_ISSUES, by row
    warnings: list[Issue] = field(default_factory=list)
    error_rows: int = 0  # rows with at least one error
    error_counts: dict[str, int] = field(default_factory=dict)  # rows breaking each rule

    @property
    def valid_count(self) -> int:
        return len(self.valid["row"])

    def first_rows(self, n: int) -> list[ImportRow]:
        """The first `n` valid rows as objects (for previews)."""
        return rows_from_columns(self.valid, limit=n)


def rows_from_columns(columns: dict[str, list[Any]], *, limit: int | None = None) -> list[ImportRow]:
    """ImportRow objects from the columnar form (dates as datetimes or ISO strings)."""
    count = len(columns["row"]) if limit is None else min(limit, len(columns["row"]))
    rows = []
    for k in range(count):
        sold_at = columns["sold_at"][k]
        rows.append(
            ImportRow(
                columns["row"][k],
                columns["product_id"][k],
                columns["sku"][k],
                columns["name"][k],
                columns["quantity"][k],
                columns["unit_price"][k],
                datetime.fromisoformat(sold_at) if isinstance(sold_at, str) else sold_at,
                columns["order"][k],
            )
        )
    return rows


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
            raise InvalidInput(
                f"unknown mapping fields {unknown}; known: {', '.join(FIELDS)}", field="mapping"
            )
    header_index = find_header(table.rows, mapping)
    if header_index < 0:
        expected = "; ".join(f"{name}: {', '.join(aliases[:3])}" for name, aliases in ALIASES.items())
        raise InvalidInput(
            field="file",
            detail=f"no header row found in the first 30 rows (expected headers such as {expected})",
        )
    headers = [str(cell).strip() for cell in table.rows[header_index]]
    positions, shown, ignored = map_columns(headers, mapping)
    parsed = Parsed(
        header_row=header_index + 1, columns=headers, mapping=shown, ignored=ignored, total_rows=0
    )
    missing = [name for name in REQUIRED if name not in positions]
    if "sku" not in positions and "product" not in positions:
        missing.append("sku or product")
    if missing:
        raise InvalidInput(
            field="file",
            detail=f"missing column(s): {', '.join(missing)}; found: {', '.join(h for h in headers if h)}",
        )
    data = table.rows[header_index + 1 :]
    numbers = [n for n, row in enumerate(data, start=header_index + 2) if _has_content(row)]
    rows = [data[n - header_index - 2] for n in numbers]  # empty rows are skipped
    parsed.total_rows = len(rows)
    columns = {name: [row[i] if i < len(row) else "" for row in rows] for name, i in positions.items()}
    day_first = _day_order(table.rows[header_index + 1 :], positions.get("date"), date_format, parsed)
    _check_rows(
        np.asarray(numbers, dtype=np.int64),
        columns,
        _Catalogue(products),
        shown,
        day_first,
        decimal_separator,
        parsed,
    )
    return parsed


def _check_rows(
    numbers: np.ndarray,
    columns: dict[str, list[object]],
    lookup: _Catalogue,
    shown: dict[str, str],
    day_first: bool | None,
    decimal_separator: str | None,
    parsed: Parsed,
) -> None:
    """Every rule on whole columns at once; issues are built only for the rows that break one."""
    n = len(numbers)
    bad = np.zeros(n, dtype=bool)

    def flag(mask: np.ndarray, name: str, rule: str, reason: str | list[str] | None = None) -> None:
        """`rule` names what the rows break (counted); `reason` is said per row when it varies."""
        values = columns.get(name, [""] * n)
        broken = np.flatnonzero(mask)
        if len(broken):
            parsed.error_counts[rule] = parsed.error_counts.get(rule, 0) + len(broken)
        # Only a rule's first rows can be among the first MAX_LISTED_ISSUES of all rules.
        for k in broken[:MAX_LISTED_ISSUES]:
            why = rule if reason is None else reason if isinstance(reason, str) else reason[k]
            parsed.errors.append(Issue(int(numbers[k]), shown.get(name, name), values[k], why))
        bad[mask] = True

    quantity = _numbers(columns["quantity"], decimal_separator)
    flag(np.isnan(quantity), "quantity", "quantity is missing or not a number")
    flag(quantity < 0, "quantity", "negative quantity (a return?): returns cannot be imported as sales")
    whole = (quantity >= 0) & ((quantity == 0) | (quantity != np.floor(quantity)))
    flag(whole, "quantity", "quantity must be a whole number of at least 1")
    flag(quantity > MAX_QUANTITY, "quantity", f"quantity must be at most {MAX_QUANTITY:,} (and finite)")
    price = np.full(n, np.nan)
    if "unit_price" in columns:
        given = np.array([bool(str(v).strip()) for v in columns["unit_price"]], dtype=bool)
        price = _numbers(columns["unit_price"], decimal_separator)
        flag(given & ~(price >= 0), "unit_price", "unit price must be a number of at least 0")
        flag(
            price > MAX_UNIT_PRICE,
            "unit_price",
            f"unit price must be at most {MAX_UNIT_PRICE:,.0f} (and finite)",
        )
    sold_at: list[datetime | None] = [None] * n
    if "date" in columns:
        dates = [_in_range(v) if type(v) is datetime else _date(v, day_first) for v in columns["date"]]
        sold_at = [d for d, _ in dates]
        problems = [p or "" for _, p in dates]
        flag(
            np.array([bool(p) for p in problems], dtype=bool),
            "date",
            "date unreadable or out of range",
            problems,
        )
    found = lookup.find_all(columns.get("sku"), columns.get("product"), n)
    unknown = np.array([isinstance(f, str) for f in found], dtype=bool)
    flag(
        unknown,
        "sku" if "sku" in columns else "product",
        "product not in the catalogue",
        [f if isinstance(f, str) else "" for f in found],
    )
    parsed.error_rows = int(bad.sum())
    _warn_duplicates(numbers, columns, parsed)
    ok = np.flatnonzero(~bad)
    products = [found[k] for k in ok.tolist()]
    orders = columns.get("order")
    parsed.valid = {
        "row": numbers[ok].tolist(),
        "product_id": [p[0] for p in products],
        "sku": [p[1] for p in products],
        "name": [p[2] for p in products],
        "quantity": quantity[ok].astype(np.int64).tolist(),
        "unit_price": [None if v != v else v for v in price[ok].tolist()],  # NaN: no price given
        "sold_at": [sold_at[k] for k in ok.tolist()],
        "order": [(str(orders[k]).strip() or None) for k in ok.tolist()]
        if orders is not None
        else [None] * len(ok),
    }
    parsed.errors.sort(key=lambda issue: issue.row)
    del parsed.errors[MAX_LISTED_ISSUES:]


def _numbers(values: list[object], decimal_separator: str | None) -> np.ndarray:
    """Floats (NaN where a cell is not a number): numeric cells at once, text through `_number`."""
    series = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, copy=True
    )
    if decimal_separator == ",":  # "1.500" means 1500 here: read every text cell the careful way
        text = [k for k, v in enumerate(values) if isinstance(v, str)]
    else:
        text = [int(k) for k in np.flatnonzero(np.isnan(series)) if isinstance(values[k], str)]
    for k in text:
        number = _number(values[k], decimal_separator)
        series[k] = np.nan if number is None else number
    return series


def _warn_duplicates(numbers: np.ndarray, columns: dict[str, list[object]], parsed: Parsed) -> None:
    seen: set[tuple[object, ...]] = set()
    warned: set[tuple[object, ...]] = set()
    for k, key in enumerate(zip(*columns.values(), strict=True)):
        if key in seen and key not in warned:  # one warning per repeated row, at its first repeat
            warned.add(key)
            if len(warned) <= MAX_LISTED_ISSUES:
                parsed.warnings.append(
                    Issue(int(numbers[k]), None, None, "exact duplicate of an earlier row")
                )
        seen.add(key)
    if len(warned) > MAX_LISTED_ISSUES:
        more = len(warned) - MAX_LISTED_ISSUES
        parsed.warnings.append(Issue(0, None, None, f"{more:,} more rows repeat an earlier row exactly"))


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
        self.skus = [str(sku) for _, sku, _ in triples]
        self.exact = {str(sku): (int(pid), str(sku), str(name)) for pid, sku, name in triples}
        self._hints: dict[str, str] = {}

    def find_all(
        self, skus: list[object] | None, names: list[object] | None, n: int
    ) -> list[tuple[int, str, str] | str]:
        """`find` for whole columns: exact SKU matches at once, the rest one by one."""
        if skus is None:
            matched: list[tuple[int, str, str] | None] = [None] * n
        else:  # most cells hold the SKU exactly as the catalogue does: one hash lookup each
            exact = self.exact
            matched = [exact.get(v) if type(v) is str else None for v in skus]
            matched = [hit or self.by_sku.get(_sku_key(v)) for hit, v in zip(matched, skus, strict=True)]
        return [
            hit
            if isinstance(hit, tuple)
            else self.find(skus[k] if skus else None, names[k] if names else None)
            for k, hit in enumerate(matched)
        ]

    def find(self, sku: object, name: object) -> tuple[int, str, str] | str:
        key, name_text = _sku_key(sku), str(name or "").strip()
        if key and key in self.by_sku:
            return self.by_sku[key]
        if name_text and normalise(name_text) in self.by_name:
            return self.by_name[normalise(name_text)]
        sku_text = str(sku if sku is not None else "").strip()
        if not sku_text and not name_text:
            return "no SKU or product name"
        probe = f"{sku_text} ({name_text})" if name_text else sku_text
        return f"unknown product {sku_text or name_text!r}{self._hint(probe, bool(name_text))}"

    def _hint(self, probe: str, with_name: bool) -> str:
        """The closest catalogue entries, for the first HINTED_UNKNOWNS distinct unknown products only:
        a file of unknown products must not cost a search of the catalogue for each of its rows."""
        if probe not in self._hints:
            if len(self._hints) >= HINTED_UNKNOWNS:
                return ""
            candidates = self.labels if with_name else self.skus
            close = process.extract(probe, candidates, scorer=fuzz.ratio, limit=3, score_cutoff=50)
            self._hints[probe] = f"; closest: {', '.join(c for c, _, _ in close)}" if close else ""
        return self._hints[probe]


def _sku_key(value: object) -> str:
    """How SKUs are compared: trimmed, case-folded, and a numeric code read as a float ("84879.0") fixed."""
    text = str(value if value is not None else "").strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text.casefold()


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
        return _in_range(value)
    if isinstance(value, date):
        return _in_range(datetime.combine(value, time()))
    text = str(value or "").strip()
    if not text:
        return None, None  # no date: the sale gets the import's time
    try:
        return _in_range(datetime.fromisoformat(text).replace(tzinfo=None))
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
        return _in_range(datetime(year, month, day, hour, minute, second))
    except ValueError:
        return None, "not a valid calendar date"


def _has_content(row: list[object]) -> bool:
    # Typed cells (numbers, dates) are content without being turned into text first.
    return any((cell.strip() if type(cell) is str else cell is not None) for cell in row)


def _in_range(value: datetime) -> tuple[datetime | None, str | None]:
    if EARLIEST_SALE <= value < LATEST_SALE:
        return value, None
    return None, f"date out of range ({EARLIEST_SALE.year}-{LATEST_SALE.year - 1})"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
