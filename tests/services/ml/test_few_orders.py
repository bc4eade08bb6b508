"""One or two orders are no daily level: a product's history covers what the service knows of it, and too
few sales are forecast as their rate over that history (product 23843 of the real shop: one order of 80,995
units the day before was forecast at 80,995 a day)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from salesflow.models.ml import Bucket, ProductInfo
from salesflow.services.ml.forecasting import forecast_series
from salesflow.services.ml.series import build_series
from tests.builders import read_retail_lines

TODAY = date(2026, 3, 18)
WINDOW_DAYS = 400


def lines(orders: dict[int, list[tuple[int, float]]]) -> pd.DataFrame:
    """Sale lines per product: (days before today, units) at 2.0 a unit."""
    rows = [
        {"day": pd.Timestamp(TODAY - timedelta(days=ago)), "product_id": product, "quantity": units}
        for product, sold in orders.items()
        for ago, units in sold
    ]
    frame = pd.DataFrame(rows)
    return frame.assign(subtotal=frame["quantity"] * 2.0)


def daily_series(frame: pd.DataFrame, product_id: int, today: date = TODAY) -> np.ndarray:
    product = ProductInfo(id=product_id, sku=str(product_id), name=f"product {product_id}")
    first_day = today - timedelta(days=WINDOW_DAYS - 1)
    series = build_series(
        frame, product=product, bucket=Bucket.DAILY, metric="quantity", today=today, first_day=first_day
    )
    return series.values


@pytest.mark.parametrize("orders", [[(1, 80_995.0)], [(10, 500.0), (3, 700.0)]], ids=["one", "two"])
def test_one_or_two_orders_are_a_rate_over_the_known_history(orders: list[tuple[int, float]]) -> None:
    y = daily_series(lines({7: orders}), 7)
    assert len(y) == WINDOW_DAYS - 1  # the known window to yesterday, not from the first sale
    forecast = forecast_series(y, model="auto", level=[80, 95], days=91, first_day=TODAY)
    units = sum(units for _, units in orders)
    assert forecast.model.kind == "sparse" and "too few to forecast a level" in forecast.model.reason
    assert forecast.lower["95"] == [0.0] * 91  # most days bring no order
    # A rate: at most the units spread over the fitted history, never an order a day.
    assert max(forecast.mean) <= units / 300 + 1e-9
    assert sum(forecast.mean) < units  # 91 days ahead sell less than the one order did in a day


def test_a_launch_selling_every_day_starts_at_its_first_sale() -> None:
    y = daily_series(lines({3: [(ago, 12.0) for ago in range(1, 6)]}), 3)
    assert list(y) == [12.0] * 5
    forecast = forecast_series(y, model="auto", level=[80], days=7, first_day=TODAY)
    assert forecast.mean == pytest.approx([12.0] * 7)


def test_the_real_shops_one_order_products_are_no_daily_level() -> None:
    raw = read_retail_lines()
    raw = raw.assign(
        day=raw["InvoiceDate"].dt.normalize(), product_id=raw["StockCode"], quantity=raw["Quantity"]
    )
    raw["subtotal"] = raw["Quantity"] * raw["UnitPrice"]
    today = date(2011, 12, 10)  # the day after 23843's order of 80,995 units
    orders = raw[raw["day"] >= pd.Timestamp(today - timedelta(days=WINDOW_DAYS))]
    selling_days = orders.groupby("product_id")["day"].nunique()
    few = selling_days[selling_days <= 2].index
    biggest = orders[orders["product_id"].isin(few)].groupby("product_id")["quantity"].sum().nlargest(5)
    assert "23843" in biggest.index
    for code, units in biggest.items():
        product = ProductInfo(id=0, sku=str(code), name=str(code))
        y = build_series(
            orders.assign(product_id=(orders["product_id"] == code).astype(int) - 1),
            product=product,
            bucket=Bucket.DAILY,
            metric="quantity",
            today=today,
            first_day=today - timedelta(days=WINDOW_DAYS - 1),
        ).values
        forecast = forecast_series(y, model="auto", level=[80, 95], days=90, first_day=today)
        assert forecast.model.kind == "sparse" or code != "23843"
        assert max(forecast.mean) <= units / 300 + 1e-9, code  # a rate over the fitted history at most
        assert sum(forecast.mean) < units, (code, sum(forecast.mean), units)
