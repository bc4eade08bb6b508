"""Charts for the PDF (matplotlib's object API on the Agg canvas: no global pyplot state, safe in threads)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

INK, ACCENT, MUTED = "#1f2937", "#2563eb", "#9ca3af"


def _dates(days: Sequence[date]) -> np.ndarray:
    return np.array(days, dtype="datetime64[D]")


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float = 7.0, height: float = 2.6) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height))
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(colors=INK, labelsize=8)
    axes.grid(axis="y", color="#e5e7eb", linewidth=0.6)
    return figure, axes


def daily_revenue(days: Sequence[date], revenue: Sequence[float]) -> bytes:
    figure, axes = _figure()
    axes.bar(_dates(days), revenue, color=ACCENT, width=0.8)
    axes.set_ylabel("Revenue", fontsize=8, color=INK)
    figure.autofmt_xdate()
    return _png(figure)


def bars(labels: Sequence[str], values: Sequence[float], *, ylabel: str) -> bytes:
    figure, axes = _figure(height=2.4)
    axes.bar(labels, values, color=ACCENT)
    axes.set_ylabel(ylabel, fontsize=8, color=INK)
    return _png(figure)


def forecast_band(
    history_days: Sequence[date],
    history: Sequence[float],
    days: Sequence[date],
    mean: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    level: str,
) -> bytes:
    figure, axes = _figure()
    axes.plot(_dates(history_days), history, color=INK, linewidth=1.0, label="actual")
    axes.fill_between(_dates(days), lower, upper, color=ACCENT, alpha=0.18, label=f"{level}% interval")
    axes.plot(_dates(days), mean, color=ACCENT, linewidth=1.6, label="forecast")
    axes.legend(fontsize=7, frameon=False)
    figure.autofmt_xdate()
    return _png(figure)
