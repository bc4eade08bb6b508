"""The shop's calendar: public holidays (`SHOP_COUNTRY` through the `holidays` package), planned closures
(explicit dates and weekly closing days). A day on it is expected to be quiet: anomaly detection leaves it
out of its baseline and never reports a drop on it, and explanations name it.

A run of days without sales that touches a public holiday (the days between Christmas and New Year, the
Easter weekend) is taken as the shop closing around that holiday, so it is expected too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from salesflow.models.weekdays import WEEKDAY_CODES

if TYPE_CHECKING:
    import holidays


@dataclass(frozen=True)
class QuietDay:
    """Why a day (or bucket) is expected to be quiet; `closed`: the shop does not sell at all then."""

    reason: str
    closed: bool
    holiday: bool = False  # a public holiday, or a closure around one


@dataclass(frozen=True)
class ShopCalendar:
    country: str | None = None
    subdivision: str | None = None
    closed_dates: frozenset[date] = frozenset()
    closed_weekdays: frozenset[int] = frozenset()  # 0 = Monday

    @classmethod
    def from_settings(
        cls,
        *,
        country: str | None,
        subdivision: str | None,
        closed_dates: Iterable[date],
        closed_weekdays: Iterable[str],
    ) -> ShopCalendar:
        return cls(
            country=country,
            subdivision=subdivision,
            closed_dates=frozenset(closed_dates),
            closed_weekdays=frozenset(WEEKDAY_CODES.index(day) for day in closed_weekdays),
        )

    @cached_property
    def _country_holidays(self) -> holidays.HolidayBase | None:
        if self.country is None:
            return None
        import holidays  # every country's rules: loaded only for a shop that names its country

        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def quiet(self, day: date, *, weekly_closing: bool = True) -> QuietDay | None:
        """Why `day` is expected to be quiet ("Christmas Day, a public holiday"), or None."""
        if day in self.closed_dates:
            return QuietDay("a planned closure", closed=True)
        if weekly_closing and day.weekday() in self.closed_weekdays:
            return QuietDay(f"a weekly closing day ({day.strftime('%A')})", closed=True)
        name = self.holiday(day)
        return QuietDay(f"{name}, a public holiday", closed=False, holiday=True) if name else None

    def holiday(self, day: date) -> str | None:
        calendar = self._country_holidays
        if calendar is None:
            return None
        name = calendar.get(day)
        return str(name) if name else None

    def expected_days(self, days: Sequence[date], values: np.ndarray) -> dict[int, QuietDay]:
        """For a daily series (`values[i]` sold on `days[i]`): the positions expected to be quiet, each with
        its reason, including zero-sale runs that touch a public holiday."""
        reasons = {i: why for i, day in enumerate(days) if (why := self.quiet(day)) is not None}
        if self.country is None:
            return reasons
        i, n = 0, len(days)
        while i < n:
            if values[i] != 0:
                i += 1
                continue
            end = i
            while end + 1 < n and values[end + 1] == 0:
                end += 1
            touching = [days[i] - timedelta(days=1), *days[i : end + 1], days[end] + timedelta(days=1)]
            names = [name for day in touching if (name := self.holiday(day))]
            if names:
                for k in range(i, end + 1):
                    if k not in reasons or not reasons[k].closed:
                        reasons[k] = QuietDay(f"the shop closed around {names[0]}", closed=True, holiday=True)
            i = end + 1
        return reasons

    def expected_buckets(
        self, starts: Sequence[date], bucket_days: int, values: np.ndarray
    ) -> dict[int, QuietDay]:
        """Positions of buckets (`bucket_days` long from each start) that hold a quiet day, with the first
        reason (a weekly closing day is in every week: not a reason); a daily series is `expected_days`."""
        if bucket_days == 1:
            return self.expected_days(starts, values)
        reasons: dict[int, QuietDay] = {}
        for i, start in enumerate(starts):
            for offset in range(bucket_days):
                day = start + timedelta(days=offset)
                if (why := self.quiet(day, weekly_closing=False)) is not None:
                    # Part of the bucket is quiet: fewer sales are expected, none is not.
                    reasons[i] = QuietDay(f"it includes {day.isoformat()}, {why.reason}", closed=False)
                    break
        return reasons

    def closed_days(
        self, days: Sequence[date], shop_sales: np.ndarray, ahead: Sequence[date]
    ) -> frozenset[date]:
        """The days of `days` (the shop's daily sales: `shop_sales`) on which it was closed, and those of
        `ahead` on which it will be: planned closures, weekly closing days, a public holiday it was closed on
        the last time, and a date it was closed on a year before around a holiday (Christmas week)."""
        expected = {i: why for i, why in self.expected_days(days, shop_sales).items() if shop_sales[i] == 0}
        around_holidays = {days[i] for i, why in expected.items() if why.holiday}
        closed = around_holidays | {days[i] for i, why in expected.items() if why.closed}
        last_time: dict[str, bool] = {}  # holiday → closed the last time it came (history runs oldest first)
        for day, sold in zip(days, shop_sales, strict=True):
            if name := self.holiday(day):
                last_time[name] = sold == 0
        for day in ahead:
            why = self.quiet(day)
            name = self.holiday(day)
            if (why and why.closed) or (name and last_time.get(name)) or _year_before(day) in around_holidays:
                closed.add(day)
        return frozenset(closed)


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)
