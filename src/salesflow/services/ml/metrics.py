"""Forecast accuracy as the M4 competition defines it (Makridakis et al., IJF 2020).

sMAPE = mean(200·|y−ŷ| / (|y|+|ŷ|)); MASE = mean|y−ŷ| ÷ mean|xₜ−xₜ₋ₘ| over the training data;
OWA = ½(sMAPE/sMAPE_Naive2 + MASE/MASE_Naive2) on the averages over all series. WAPE = Σ|y−ŷ| ÷ Σ|y|.
MSIS (M4's interval score, α = 0.05 for 95% intervals) = mean(U−L + 2/α·(L−y)·[y<L] + 2/α·(y−U)·[y>U]) ÷ the
MASE scale. Coverage: the share of actual values inside their interval.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def smape(actual: FloatArray, forecast: FloatArray) -> float:
    """Symmetric MAPE in percent (0–200); terms where both values are 0 count as 0."""
    denominator = np.abs(actual) + np.abs(forecast)
    terms = np.divide(
        200 * np.abs(actual - forecast), denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return float(np.mean(terms))


def mase_scale(train: FloatArray, season_length: int = 1) -> float:
    """Mean absolute seasonal difference of the training data (the naive in-sample error)."""
    m = season_length if len(train) > season_length else 1
    if len(train) <= m:
        return float("nan")
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def mase(actual: FloatArray, forecast: FloatArray, train: FloatArray, season_length: int = 1) -> float:
    """Mean absolute scaled error; NaN when the training data has no variation to scale by."""
    scale = mase_scale(train, season_length)
    if not scale or np.isnan(scale):
        return float("nan")
    return float(np.mean(np.abs(actual - forecast)) / scale)


def mae(actual: FloatArray, forecast: FloatArray) -> float:
    return float(np.mean(np.abs(actual - forecast)))


def wape(actual: FloatArray, forecast: FloatArray) -> float:
    """Weighted absolute percentage error in percent; NaN when the actuals sum to zero."""
    total = float(np.sum(np.abs(actual)))
    return float(np.sum(np.abs(actual - forecast)) / total * 100) if total else float("nan")


def owa(smape_value: float, mase_value: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average relative to Naive2 (1.0 = as good as Naive2)."""
    return 0.5 * (smape_value / smape_naive2 + mase_value / mase_naive2)


def msis(
    actual: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    train: FloatArray,
    season_length: int = 1,
    alpha: float = 0.05,
) -> float:
    """Mean scaled interval score; NaN when the training data has no variation to scale by."""
    scale = mase_scale(train, season_length)
    if not scale or np.isnan(scale):
        return float("nan")
    penalty = 2 / alpha * ((lower - actual) * (actual < lower) + (actual - upper) * (actual > upper))
    return float(np.mean(upper - lower + penalty) / scale)


def inside(actual: FloatArray, lower: FloatArray, upper: FloatArray) -> int:
    """How many actual values fall inside their interval (bounds included)."""
    return int(np.sum((actual >= lower) & (actual <= upper)))
