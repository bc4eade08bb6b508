"""The kept lines' form: sorted by time, each with its business day; how a fresh tail joins them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LinesState:
    """The cached lines and what they cover (naive Java-local times)."""

    lines: pd.DataFrame  # SALE_LINE_COLUMNS + `day` (business day, datetime64[s]), sorted by sold_at
    since: datetime  # every line with sold_at >= since is present
    refreshed_at: datetime  # Java-local time of the last fetch
    loaded_at: datetime  # Java-local time of the last full load


def with_days(lines: pd.DataFrame, java_tz: ZoneInfo, business_tz: ZoneInfo) -> pd.DataFrame:
    """Sorted lines with their business day."""
    if not lines["sold_at"].is_monotonic_increasing:
        lines = lines.sort_values("sold_at", kind="stable").reset_index(drop=True)
    return lines.assign(day=business_days(lines["sold_at"], java_tz, business_tz))


def merge_tail(lines: pd.DataFrame, fresh: pd.DataFrame, tail_start: datetime) -> pd.DataFrame:
    """`lines` with everything from `tail_start` on replaced by `fresh` (already with days)."""
    keep = lines.iloc[: int(lines["sold_at"].searchsorted(tail_start))]
    keep = keep[~keep["sale_id"].isin(fresh["sale_id"])]  # a sale is never counted twice
    merged = pd.concat([keep, fresh], ignore_index=True)
    return merged.sort_values("sold_at", kind="stable").reset_index(drop=True)


def business_days(sold_at: pd.Series, java_tz: ZoneInfo, business_tz: ZoneInfo) -> pd.Series:
    """The business day (midnight, naive) of each naive Java-local timestamp."""
    if java_tz.key == business_tz.key:
        midnight: pd.Series = sold_at.dt.floor("D").astype("datetime64[s]")
        return midnight
    # Ambiguous wall times (the repeated hour when clocks go back) are read as standard time.
    aware = sold_at.dt.tz_localize(
        java_tz, ambiguous=np.zeros(len(sold_at), dtype=bool), nonexistent="shift_forward"
    )
    local: pd.Series = aware.dt.tz_convert(business_tz).dt.tz_localize(None).dt.floor("D")
    days: pd.Series = local.astype("datetime64[s]")
    return days


def days_between(frame: pd.DataFrame, first_day: date, last_day: date) -> pd.DataFrame:
    """The rows whose `day` is in `first_day..last_day`: a positional slice when days are sorted (always,
    but for the repeated hour when clocks go back), else a mask."""
    days = frame["day"]
    first, after = pd.Timestamp(first_day), pd.Timestamp(last_day) + pd.Timedelta(days=1)
    if days.is_monotonic_increasing:
        start, stop = days.searchsorted(first), days.searchsorted(after)
        return frame.iloc[int(start) : int(stop)]
    return frame.loc[(days >= first) & (days < after)]
