"""Deterministic, realistic demo history for the embedded store.

Stages: catalogue (products, prices, demand profiles) → expected daily demand per product (weekly and yearly
seasonality, trend, promotions, launches, discontinuations, stock-outs, injected anomalies) → Poisson draws
of sale lines → lines grouped into timed sales. Everything is vectorised and driven by one seed; the
same (seed, products, start day) gives the same catalogue, and each range of days the same history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# (category, SKU prefix, price range, yearly peak day-of-year or None, nouns)
_CATEGORIES: list[tuple[str, str, tuple[float, float], int | None, list[str]]] = [
    (
        "Beverages",
        "BEV",
        (0.8, 6.0),
        200,
        [
            "Sparkling Water",
            "Orange Juice",
            "Cola",
            "Iced Tea",
            "Lemonade",
            "Cold Brew",
            "Mineral Water",
            "Apple Juice",
        ],
    ),
    (
        "Snacks",
        "SNK",
        (0.9, 5.0),
        None,
        [
            "Potato Chips",
            "Salted Peanuts",
            "Granola Bar",
            "Pretzels",
            "Dark Chocolate",
            "Rice Crackers",
            "Trail Mix",
            "Popcorn",
        ],
    ),
    (
        "Dairy",
        "DAI",
        (0.7, 8.0),
        None,
        [
            "Whole Milk",
            "Greek Yogurt",
            "Butter",
            "Cheddar",
            "Cream",
            "Goat Cheese",
            "Kefir",
            "Skyr",
        ],
    ),
    (
        "Bakery",
        "BAK",
        (0.9, 6.0),
        None,
        [
            "Baguette",
            "Croissant",
            "Rye Bread",
            "Brioche",
            "Muffin",
            "Sourdough Loaf",
            "Pain au Chocolat",
            "Bagel",
        ],
    ),
    (
        "Household",
        "HOU",
        (1.5, 15.0),
        80,
        [
            "Dish Soap",
            "Laundry Pods",
            "Sponge Pack",
            "Paper Towels",
            "Trash Bags",
            "Glass Cleaner",
            "Candles",
            "Light Bulb",
        ],
    ),
    (
        "Personal Care",
        "PER",
        (1.5, 18.0),
        None,
        [
            "Shampoo",
            "Toothpaste",
            "Hand Cream",
            "Deodorant",
            "Sunscreen",
            "Lip Balm",
            "Body Wash",
            "Razor",
        ],
    ),
    (
        "Stationery",
        "STA",
        (0.5, 12.0),
        245,
        [
            "Notebook",
            "Ballpoint Pens",
            "Pencil Case",
            "Sticky Notes",
            "Highlighters",
            "Stapler",
            "Envelopes",
            "Sketchbook",
        ],
    ),
    (
        "Gifts",
        "GIF",
        (4.0, 40.0),
        355,
        [
            "Gift Card",
            "Scented Candle Set",
            "Mug",
            "Puzzle",
            "Photo Frame",
            "Tea Sampler",
            "Wrapping Paper",
            "Plush Toy",
        ],
    ),
]
_VARIANTS = [
    "Classic",
    "Organic",
    "Family Size",
    "Mini",
    "Premium",
    "Light",
    "XL",
    "Eco",
    "Original",
    "Spicy",
    "Vanilla",
    "Citrus",
    "Travel",
    "Deluxe",
    "Value Pack",
    "Limited",
]
# Shop traffic Monday..Sunday.
_WEEKLY = np.array([0.85, 0.9, 0.95, 1.0, 1.2, 1.45, 0.65])
_HOURS = np.arange(8, 20)
_HOUR_WEIGHTS = np.array([0.4, 0.7, 0.9, 1.1, 1.3, 1.0, 0.8, 0.9, 1.1, 1.4, 1.3, 0.8])


@dataclass(frozen=True)
class DemoCatalog:
    """Products and their hidden demand profiles (one row per product)."""

    products: pd.DataFrame  # product_id, name, sku, price, category, description, low_stock_threshold
    profile: pd.DataFrame  # base_rate, trend, season_amp, season_peak, mean_qty, launch_day, end_day
    start: date
    seed: int


@dataclass(frozen=True)
class DemoHistory:
    """Sales and sale items in the Java schema, plus the injected events (for tests)."""

    sales: pd.DataFrame  # id, sale_date, total_amount
    items: pd.DataFrame  # id, sale_id, product_id, product_name, sku, quantity, unit_price, subtotal
    events: pd.DataFrame  # day, product_id (or -1 for the whole shop), kind, factor


def build_catalog(*, n_products: int, start: date, days: int, seed: int) -> DemoCatalog:
    """Products with names, SKUs, prices, categories, thresholds and demand profiles."""
    rng = np.random.default_rng([seed, 1])
    cat_index = rng.integers(0, len(_CATEGORIES), size=n_products)
    names, skus, prices, categories, peaks = [], [], [], [], []
    counters: dict[str, int] = {}
    for i, c in enumerate(cat_index):
        category, prefix, (low, high), peak, nouns = _CATEGORIES[c]
        counters[prefix] = counters.get(prefix, 0) + 1
        noun = nouns[i % len(nouns)]
        variant = _VARIANTS[(i // len(nouns)) % len(_VARIANTS)]
        names.append(f"{noun} {variant}" + (f" {i // (len(nouns) * len(_VARIANTS)) + 1}" if i >= 128 else ""))
        skus.append(f"{prefix}-{counters[prefix]:04d}")
        prices.append(round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 2))
        categories.append(category)
        peaks.append(-1 if peak is None else peak)

    kind = rng.choice(
        ["smooth", "intermittent", "slow", "new", "discontinued"],
        size=n_products,
        p=[0.62, 0.18, 0.1, 0.04, 0.06],
    )
    base_rate = np.where(
        kind == "smooth",
        rng.lognormal(1.2, 0.6, n_products),
        np.where(
            kind == "intermittent",
            rng.uniform(0.15, 0.5, n_products),
            np.where(
                kind == "slow",
                rng.uniform(0.02, 0.1, n_products),
                rng.lognormal(0.8, 0.5, n_products),
            ),
        ),
    )
    launch_day = np.where(kind == "new", days - rng.integers(20, 75, n_products), 0)
    end_day = np.where(kind == "discontinued", days - rng.integers(100, 300, n_products), days + 10_000)
    thresholds = rng.choice([5, 10, 10, 10, 15, 20], size=n_products).astype("float64")
    thresholds[rng.random(n_products) < 0.08] = np.nan  # Java allows null thresholds

    products = pd.DataFrame(
        {
            "product_id": np.arange(1, n_products + 1, dtype=np.int64),
            "name": names,
            "sku": skus,
            "price": prices,
            "category": categories,
            "description": [f"{n} ({c.lower()})" for n, c in zip(names, categories, strict=True)],
            "low_stock_threshold": pd.array(thresholds, dtype="Int64"),
        }
    )
    profile = pd.DataFrame(
        {
            "kind": kind,
            "base_rate": base_rate,
            "trend": rng.lognormal(0.0, 0.35, n_products),  # demand ratio end/start of the history
            "season_amp": np.where(np.array(peaks) >= 0, rng.uniform(0.2, 0.6, n_products), 0.08),
            "season_peak": np.where(np.array(peaks) >= 0, peaks, 355),
            "mean_qty": np.where(kind == "smooth", rng.uniform(1.0, 2.2, n_products), 1.0),
            "launch_day": launch_day,
            "end_day": end_day,
        }
    )
    return DemoCatalog(products=products, profile=profile, start=start, seed=seed)


def expected_demand(catalog: DemoCatalog, first_day: int, n_days: int, total_days: int) -> FloatArray:
    """Expected units per day and product from day offset `first_day`; shape (n_days, products)."""
    p = catalog.profile
    day = np.arange(first_day, first_day + n_days)[:, None]
    dates = pd.date_range(catalog.start + timedelta(days=first_day), periods=n_days, freq="D")
    weekday = _WEEKLY[dates.day_of_week.to_numpy()][:, None]
    doy = dates.day_of_year.to_numpy()[:, None]
    yearly = 1 + p["season_amp"].to_numpy() * np.cos(2 * np.pi * (doy - p["season_peak"].to_numpy()) / 365.25)
    trend = p["trend"].to_numpy() ** (day / max(total_days, 1))
    active = (day >= p["launch_day"].to_numpy()) & (day < p["end_day"].to_numpy())
    rng = np.random.default_rng([catalog.seed, 2])  # promotions and stock-outs depend on the catalogue only
    n_products = len(p)
    promo_start = rng.integers(0, total_days + 400, size=(n_products, 3))
    stockout_start = rng.integers(0, total_days + 400, size=(n_products, 2))
    promo = ((day[..., None] >= promo_start) & (day[..., None] < promo_start + 7)).any(axis=2)
    stockout = ((day[..., None] >= stockout_start) & (day[..., None] < stockout_start + 9)).any(axis=2)
    stockout &= (p["kind"].to_numpy() == "smooth")[None, :]
    demand = p["base_rate"].to_numpy() * weekday * yearly * trend * np.where(promo, 2.2, 1.0)
    return np.where(active & ~stockout, demand, 0.0)


def injected_events(catalog: DemoCatalog, total_days: int) -> pd.DataFrame:
    """A few shop-wide and product anomalies at fixed places in the history, each one unmistakable.

    Shop-wide changes are sized against the day's count noise (`_shop_noise_sd`), not as fixed factors:
    on a quiet shop a 70% drop is within five standard deviations of an ordinary day, which no detector
    can call without also flagging ordinary days. Each injected change is at least `EVENT_SIZE_SD` of them.
    """
    rng = np.random.default_rng([catalog.seed, 3])
    # Away from both ends, so that detectors have history before and the latest days stay ordinary.
    low = min(60, total_days // 4)
    offsets = rng.choice(np.arange(low, max(low + 5, total_days - 14)), size=5, replace=False)
    smooth = catalog.products["product_id"].to_numpy()[catalog.profile["kind"].to_numpy() == "smooth"]
    spike_mean, spike_sd = _shop_noise_sd(catalog, int(offsets[0]), total_days)
    drop_mean, drop_sd = _shop_noise_sd(catalog, int(offsets[1]), total_days)
    rows = [
        (offsets[0], -1, "HIGH_SPIKE", max(3.5, _factor_for_gap(spike_mean, EVENT_SIZE_SD * spike_sd))),
        (offsets[1], -1, "DROP", min(0.3, _factor_for_gap(drop_mean, -EVENT_SIZE_SD * drop_sd))),
        (offsets[2], -1, "ZERO_DROP", 0.0),
        (offsets[3], int(rng.choice(smooth)), "HIGH_SPIKE", 8.0),
        (offsets[4], int(rng.choice(smooth)), "HIGH_SPIKE", 8.0),
    ]
    return pd.DataFrame(
        {
            "day": [catalog.start + timedelta(days=int(o)) for o, *_ in rows],
            "product_id": np.array([r[1] for r in rows], dtype=np.int64),
            "kind": [r[2] for r in rows],
            "factor": [r[3] for r in rows],
        }
    )


EVENT_SIZE_SD = 14.0  # on the 40-product test shop, 10 still left one drop in 730 anchor days unflagged


def _shop_noise_sd(catalog: DemoCatalog, offset: int, total_days: int) -> tuple[float, float]:
    """The shop's expected units on day `offset` and their noise on the square-root (Anscombe) scale.

    Units are a compound Poisson count (Poisson lines of 1 + Poisson(mean − 1) units): variance
    Σ rate × E[q²], so 2√units varies by √(variance / mean), above Poisson's 1 when lines hold several units.
    """
    demand = expected_demand(catalog, offset, 1, total_days)[0]
    mean_qty = catalog.profile["mean_qty"].to_numpy()
    mean = float(demand.sum())
    variance = float((demand / mean_qty * (mean_qty - 1 + mean_qty**2)).sum())
    return mean, float(np.sqrt(variance / mean)) if mean > 0 else 1.0


def _factor_for_gap(mean: float, gap: float) -> float:
    """The factor that moves `mean` units by `gap` on the Anscombe scale (0 when no drop is that large)."""
    if mean <= 0:
        return 0.0
    root = max(float(np.sqrt(mean + 3 / 8)) + gap / 2, 0.0)
    return max(root**2 - 3 / 8, 0.0) / mean


def generate_history(
    catalog: DemoCatalog,
    *,
    first_day: int,
    n_days: int,
    total_days: int,
    scale: float = 1.0,
    first_sale_id: int = 1,
    first_item_id: int = 1,
) -> DemoHistory:
    """Sales for day offsets `first_day..first_day+n_days` of the catalogue's history."""
    demand = expected_demand(catalog, first_day, n_days, total_days) * scale
    events = injected_events(catalog, total_days)
    demand = _apply_events(demand, catalog, events, first_day)
    rng = np.random.default_rng([catalog.seed, 4, first_day, n_days])
    mean_qty = catalog.profile["mean_qty"].to_numpy()
    n_lines = rng.poisson(demand / mean_qty)  # (days, products)
    day_idx, prod_idx = np.nonzero(n_lines)
    reps = n_lines[day_idx, prod_idx]
    line_day = np.repeat(day_idx, reps)
    line_prod = np.repeat(prod_idx, reps)
    quantity = 1 + rng.poisson(mean_qty[line_prod] - 1.0)

    sale_key, sale_ts = _group_into_sales(rng, line_day, catalog.start, first_day)
    products = catalog.products
    base_price = products["price"].to_numpy()[line_prod]
    unit_price = np.round(base_price, 2)
    subtotal = np.round(unit_price * quantity, 2)
    order = np.argsort(sale_ts[sale_key], kind="stable")
    ranks = np.empty(len(sale_ts), dtype=np.int64)
    ranks[np.argsort(sale_ts, kind="stable")] = np.arange(len(sale_ts))
    items = (
        pd.DataFrame(
            {
                "sale_id": first_sale_id + ranks[sale_key],
                "product_id": products["product_id"].to_numpy()[line_prod],
                "product_name": products["name"].to_numpy()[line_prod],
                "sku": products["sku"].to_numpy()[line_prod],
                "quantity": quantity.astype(np.int64),
                "unit_price": unit_price,
                "subtotal": subtotal,
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    items.insert(0, "id", np.arange(first_item_id, first_item_id + len(items), dtype=np.int64))
    totals = items.groupby("sale_id", sort=True)["subtotal"].sum().round(2)
    sales = pd.DataFrame(
        {
            "id": totals.index.to_numpy(dtype=np.int64),
            "sale_date": np.sort(sale_ts),
            "total_amount": totals.to_numpy(),
        }
    )
    return DemoHistory(sales=sales, items=items, events=events)


def stock_levels(catalog: DemoCatalog, total_days: int, seed: int) -> IntArray:
    """Current stock: mostly weeks of cover, with some out-of-stock, low and dead items."""
    rng = np.random.default_rng([seed, 5])
    recent = expected_demand(catalog, total_days - 28, 28, total_days).mean(axis=0)
    cover_days = rng.uniform(3, 60, size=len(recent))
    stock: FloatArray = np.ceil(recent * cover_days + rng.integers(0, 6, size=len(recent)))
    stock[rng.random(len(stock)) < 0.04] = 0
    discontinued = catalog.profile["kind"].to_numpy() == "discontinued"
    stock[discontinued] = rng.integers(5, 60, size=int(discontinued.sum()))  # dead stock left on shelves
    return stock.astype(np.int64)


def _apply_events(
    demand: FloatArray, catalog: DemoCatalog, events: pd.DataFrame, first_day: int
) -> FloatArray:
    offsets = np.array([(d - catalog.start).days for d in events["day"]]) - first_day
    for offset, product_id, factor in zip(offsets, events["product_id"], events["factor"], strict=True):
        if 0 <= offset < demand.shape[0]:
            if product_id < 0:
                demand[offset, :] *= factor
            else:
                demand[offset, product_id - 1] *= factor
    return demand


def _group_into_sales(
    rng: np.random.Generator, line_day: IntArray, start: date, first_day: int
) -> tuple[IntArray, npt.NDArray[np.datetime64]]:
    """Assign lines to sales (about 2.3 lines per sale) and give each sale a time in opening hours."""
    n_days = int(line_day.max()) + 1 if len(line_day) else 0
    lines_per_day = np.bincount(line_day, minlength=n_days)
    sales_per_day = np.maximum(1, np.round(lines_per_day / 2.3)).astype(np.int64)
    day_offset = np.concatenate([[0], np.cumsum(sales_per_day)[:-1]]) if n_days else np.array([], np.int64)
    raw_key = day_offset[line_day] + (rng.random(len(line_day)) * sales_per_day[line_day]).astype(np.int64)
    used, sale_key = np.unique(raw_key, return_inverse=True)
    sale_day = np.searchsorted(day_offset, used, side="right") - 1
    hour = rng.choice(_HOURS, size=len(used), p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    micros = rng.integers(0, 3_600_000_000, size=len(used))
    day0 = np.datetime64(start + timedelta(days=first_day), "us")
    sale_ts = (
        day0
        + sale_day.astype("timedelta64[D]").astype("timedelta64[us]")
        + (hour.astype(np.int64) * 3_600_000_000 + micros).astype("timedelta64[us]")
    )
    return sale_key.astype(np.int64), sale_ts
