"""From sale lines to the series the models see: one product (or the whole shop), bucketed, zero-filled.

Buckets end yesterday (the last complete day): `daily` = days, `weekly` = 7-day blocks, `monthly` = 30-day
blocks, so that every bucket is complete and of equal length. A product's series starts at its first sale
(a product launched three days ago has three days of history, not a year of zeros) once it has sold on
`MIN_ORDER_DAYS` days; before that its first sale dates no launch, and the series covers the whole window
the service knows (one order yesterday is one order in that window, not a day's level).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import anyio
import numpy as np
import pandas as pd

from salesflow.data.sale_lines import SaleLineCache
from salesflow.errors import InvalidInput, NotFound
from salesflow.models.ml import Bucket, ProductInfo, ProductRef, Scope
from salesflow.services.ml.selection import MIN_ORDER_DAYS

BUCKET_DAYS = {Bucket.DAILY: 1, Bucket.WEEKLY: 7, Bucket.MONTHLY: 30}
SEASON = {Bucket.DAILY: 7, Bucket.WEEKLY: 52, Bucket.MONTHLY: 12}


@dataclass(frozen=True)
class Series:
    """A bucketed history: `values[i]` covers the days from `starts[i]` for `bucket_days` days."""

    values: np.ndarray
    starts: list[date]
    bucket: Bucket
    first_future: date  # the first day after the history (today)

    @property
    def bucket_days(self) -> int:
        return BUCKET_DAYS[self.bucket]

    def future_starts(self, h: int) -> list[date]:
        return [self.first_future + timedelta(days=i * self.bucket_days) for i in range(h)]


class SeriesLoader:
    """The load stage shared by the ML pipelines: the named product and its bucketed history."""

    def __init__(self, lines: SaleLineCache, *, history_days: int) -> None:
        self.lines = lines
        self.history_days = history_days

    async def product(self, ref: ProductRef) -> ProductInfo | None:
        return resolve_product(await self.lines.products(), ref)

    async def series(self, product: ProductInfo | None, ref: ProductRef, today: date) -> Series:
        first_day = today - timedelta(days=self.history_days - 1)
        lines = await self.lines.window(first_day, today - timedelta(days=1))
        return await anyio.to_thread.run_sync(
            lambda: build_series(
                lines, product=product, bucket=ref.period, metric=ref.metric, today=today, first_day=first_day
            )
        )

    async def daily_values(self, product_ids: Sequence[int], metric: str, today: date) -> list[np.ndarray]:
        """Each product's daily history, read at once (the day's batch, the pooled model)."""
        first_day = today - timedelta(days=self.history_days - 1)
        lines = await self.lines.window(first_day, today - timedelta(days=1))

        def build() -> list[np.ndarray]:
            groups = dict(tuple(lines.groupby("product_id", sort=False)))
            empty = lines.iloc[0:0]
            return [
                build_series(
                    groups.get(pid, empty),
                    product=ProductInfo(id=pid, sku="", name=""),
                    bucket=Bucket.DAILY,
                    metric=metric,
                    today=today,
                    first_day=first_day,
                ).values
                for pid in product_ids
            ]

        return await anyio.to_thread.run_sync(build)


def require_known(model: str, known: Iterable[str]) -> None:
    """422 naming the field when a request asks for a model that does not exist."""
    if model not in known:
        raise InvalidInput(f"unknown model {model!r}; one of: {', '.join(known)}", field="model", value=model)


def horizon(forecast_days: int, bucket: Bucket) -> int:
    """Buckets needed to cover `forecast_days` days."""
    return math.ceil(forecast_days / BUCKET_DAYS[bucket])


def resolve_product(products: pd.DataFrame, ref: ProductRef) -> ProductInfo | None:
    """The product named by SKU, id or name (in that order); None for GLOBAL; NotFound when unknown.

    Every other identifier given must name the same product: a frontend that sends Java's id beside the
    SKU must never get a forecast of another product because the two catalogues number products apart."""
    if ref.scope == Scope.GLOBAL:
        return None
    named: list[tuple[str, str, pd.Series]] = []  # field, how to say it, which rows it names
    if ref.sku:
        named.append(("sku", f"SKU {ref.sku!r}", products["sku"] == ref.sku))
    if ref.product_id is not None:
        named.append(("product_id", f"id {ref.product_id}", products["product_id"] == ref.product_id))
    if ref.name:
        named.append(("name", f"name {ref.name!r}", products["name"].str.casefold() == ref.name.casefold()))
    _, label, mask = named[0]
    match = products[mask]
    if match.empty:
        raise NotFound(f"No product with {label}")
    row = match.iloc[0]
    product = ProductInfo(id=int(row["product_id"]), sku=str(row["sku"]), name=str(row["name"]))
    for field, other, other_mask in named[1:]:
        if not (other_mask & (products["product_id"] == product.id)).any():
            raise InvalidInput(
                f"{label} is product {product.id} ({product.name}), but {other} is not:"
                " the identifiers name different products",
                field=field,
            )
    return product


def build_series(
    lines: pd.DataFrame,
    *,
    product: ProductInfo | None,
    bucket: Bucket,
    metric: str,
    today: date,
    first_day: date,
) -> Series:
    """Σ quantity (or revenue) per bucket from `first_day` (or the product's first sale) to yesterday."""
    if product is not None:
        lines = lines[lines["product_id"] == product.id]
    column = "quantity" if metric == "quantity" else "subtotal"
    daily = lines.groupby("day", sort=True)[column].sum()
    # The history starts at the first sale: days before it are "not selling yet", not "selling zero"; unless
    # there are too few sales to tell a launch from a one-off order.
    selling = daily[daily != 0]
    if len(selling) >= MIN_ORDER_DAYS:
        first_day = max(first_day, selling.index.min().date())
    elif not len(selling):
        first_day = today - timedelta(days=1)
    days = pd.date_range(first_day, today - timedelta(days=1), freq="D")
    values = daily.reindex(days.astype("datetime64[s]"), fill_value=0).to_numpy(dtype=np.float64)
    size = BUCKET_DAYS[bucket]
    blocks = bucket_sums(values, size)  # whole buckets only, aligned on yesterday
    first = today - timedelta(days=len(blocks) * size)
    starts = [first + timedelta(days=i * size) for i in range(len(blocks))]
    return Series(values=blocks, starts=starts, bucket=bucket, first_future=today)


def bucket_sums(values: np.ndarray, size: int) -> np.ndarray:
    """Sums of consecutive `size`-day blocks, the last ending with the last value (whole blocks only)."""
    usable = (len(values) // size) * size
    return np.asarray(values[len(values) - usable :].reshape(-1, size).sum(axis=1), dtype=np.float64)
