"""Wire models of the ML routes (frontend-contract.md calls 3 and 4); extra keys are additions."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from salesflow.models.alerts import Severity

DEFAULT_ANOMALY_MODEL = "robust_seasonal"
DEFAULT_LEVELS = (80, 95)  # the intervals a forecast carries unless asked for others
MAX_LEVELS = 5  # a request's intervals: each is computed and sent for every day


class Scope(StrEnum):
    GLOBAL = "GLOBAL"
    PRODUCT = "PRODUCT"


class Bucket(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class ProductRef(BaseModel):
    """Which product: by SKU, name or id (PRODUCT scope)."""

    scope: Scope = Scope.GLOBAL
    sku: str | None = None
    name: str | None = None
    product_id: int | None = None
    period: Bucket = Bucket.DAILY
    metric: Literal["quantity", "revenue"] = "quantity"

    @model_validator(mode="after")
    def _product_named(self) -> ProductRef:
        if self.scope == Scope.PRODUCT and not (self.sku or self.name or self.product_id is not None):
            raise ValueError("PRODUCT scope needs sku, name or product_id")
        return self


class ForecastRequest(ProductRef):
    forecast_days: int = Field(default=7, ge=1, le=365)
    model: str = "auto"
    level: list[int] = Field(default_factory=lambda: list(DEFAULT_LEVELS), max_length=MAX_LEVELS)

    @model_validator(mode="after")
    def _levels(self) -> ForecastRequest:
        if any(not 0 < lv < 100 for lv in self.level):
            raise ValueError("level values must be between 0 and 100 (exclusive)")
        return self


class AnomalyRequest(ProductRef):
    model: str = DEFAULT_ANOMALY_MODEL


class ProductInfo(BaseModel):
    id: int
    sku: str
    name: str


Trend = Literal["upward", "downward", "stable"]


class SeriesKind(StrEnum):
    """A forecast's `model.kind`: how `auto` classed the series, or why no class applies."""

    SHORT = "short"
    SPARSE = "sparse"
    INTERMITTENT = "intermittent"
    SMOOTH = "smooth"
    REQUESTED = "requested"  # the model asked for, not `auto`
    FALLBACK = "fallback"  # the model asked for could not fit this series
    EMPTY = "empty"  # no history yet


class ForecastSummary(BaseModel):
    total: float
    daily_average: float
    peak_value: float
    peak_day: date | None
    trend: Trend
    period_label: str


class ModelInfo(BaseModel):
    name: str
    kind: SeriesKind
    reason: str
    season_length: int
    history_periods: int


class Accuracy(BaseModel):
    mae: float
    wape: float | None
    mase: float | None


class Backtest(BaseModel):
    """Accuracy on the held-out tail of the history: the last `horizon` buckets of `bucket_days` days."""

    horizon: int
    bucket_days: int = 1
    model: Accuracy
    seasonal_naive: Accuracy


class DailyBacktest(BaseModel):
    """The held-out tail by day, as a `DailyForecast` keeps it (scored when a request is shaped)."""

    actual: list[float]
    model: list[float]
    seasonal_naive: list[float]
    scales: dict[int, float | None]  # bucket days → the training part's naive error in such buckets (MASE)


class DailyForecast(BaseModel):
    """One series' forecast made on one day, by day. Every forecast request is a view of it (its first
    days, summed into the request's buckets), so the day's batch answers requests and all views agree."""

    first_day: date
    mean: list[float]
    lower: dict[str, list[float]]
    upper: dict[str, list[float]]
    model: ModelInfo
    recent: list[float]  # the history's last days (the summary's trend compares the forecast with them)
    backtest: DailyBacktest | None
    closed: list[date] = []  # forecast days the shop is closed (forecast as 0)


class ForecastResponse(BaseModel):
    scope: Scope
    product_id: int | None
    dates: list[date]
    predictions: list[float]
    summary: ForecastSummary
    product: ProductInfo | None
    bucket: Bucket
    metric: str
    lower: dict[str, list[float]]
    upper: dict[str, list[float]]
    model: ModelInfo
    backtest: Backtest | None
    closed_days: list[date] = []  # days of the answer on which the shop is closed: forecast as 0
    # A units forecast in money: each bucket's (rounded) units × `unit_price`, so the two always agree.
    unit_price: float | None = None  # a product's catalogue price; the shop's revenue per unit, last 28 days
    revenue: list[float] | None = None


class Anomaly(BaseModel):
    date: date
    value: float
    expected: float
    score: float
    severity: Literal[Severity.HIGH, Severity.MEDIUM]
    type: Literal["HIGH_SPIKE", "DROP", "ZERO_DROP"]
    explanation: str


class AnomalyResponse(BaseModel):
    scope: Scope
    product_id: int | None
    period: Bucket
    count: int
    anomalies: list[Anomaly]
    product: ProductInfo | None
    model: str
    threshold: float


class ScoredAccuracy(BaseModel):
    """How forecasts did against the days they forecast (each over `horizon_days` days from its first)."""

    forecasts: int  # scored forecasts summed here
    days: int  # series-days
    actual_units: float
    forecast_units: float
    wape: float | None  # Σ|actual − forecast| / Σ actual (None: nothing sold)
    naive_wape: float | None  # the same for seasonal naive (the same weekday last week)
    mase: float | None  # mean absolute error over the in-sample seasonal-naive error, averaged
    naive_mase: float | None
    coverage_80: float | None  # share of days inside the 80% band
    coverage_95: float | None


class ProductAccuracy(ScoredAccuracy):
    product_id: int
    sku: str | None
    name: str | None


class AccuracyResponse(BaseModel):
    """`GET /ml/accuracy`: the forecasts made over the last `weeks` weeks whose days are known, scored."""

    weeks: int
    horizon_days: int
    first_forecast: date  # forecasts made from this day …
    last_forecast: date  # … to this one (its last forecast day was yesterday)
    shop: ScoredAccuracy  # the whole shop's daily sales
    products: ScoredAccuracy  # every product's forecasts together
    items: list[ProductAccuracy]  # per product, the most sold first
    total: int
    offset: int
    limit: int
    summary: str  # one line a manager reads
