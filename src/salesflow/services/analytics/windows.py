"""Analysis windows: a period (or explicit dates) becomes inclusive business days, with a human label."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from babel.dates import format_date

from salesflow.errors import InvalidInput
from salesflow.models.analytics import Period, SalesQuery

_LABELS = {
    "en": {
        Period.DAILY: "Today",
        Period.WEEKLY: "Last 7 days",
        Period.MONTHLY: "Month to date",
        Period.QUARTERLY: "Last 90 days",
    },
    "fr": {
        Period.DAILY: "Aujourd’hui",
        Period.WEEKLY: "7 derniers jours",
        Period.MONTHLY: "Mois en cours",
        Period.QUARTERLY: "90 derniers jours",
    },
}
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)
_CUSTOM_LABEL = {"en": "{first} to {last}", "fr": "Du {first} au {last}"}


@dataclass(frozen=True)
class Window:
    """Inclusive business days `first..last`."""

    first: date
    last: date
    label: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Window:
        """The window of equal length just before this one."""
        last = self.first - timedelta(days=1)
        return Window(first=last - timedelta(days=self.days - 1), last=last, label="")


def resolve_window(query: SalesQuery, *, today: date, max_days: int, language: str = "en") -> Window:
    """daily = today; weekly = last 7 days; monthly = month to date; quarterly = last 90 days; or dates."""
    if (query.start_date is None) != (query.end_date is None):
        missing = "end_date" if query.end_date is None else "start_date"
        raise InvalidInput("start_date and end_date must be given together", field=missing, value=None)
    if query.start_date is not None and query.end_date is not None:
        return _explicit_window(query.start_date, query.end_date, max_days=max_days, language=language)
    return period_window(query.period, today=today, language=language)


def period_window(period: Period, *, today: date, language: str = "en") -> Window:
    first = {
        Period.DAILY: today,
        Period.WEEKLY: today - timedelta(days=6),
        Period.MONTHLY: today.replace(day=1),
        Period.QUARTERLY: today - timedelta(days=89),
    }[period]
    return Window(first=first, last=today, label=period_label(period, language))


def period_label(period: Period, language: str = "en") -> str:
    return _LABELS[language][period]


def _explicit_window(first: date, last: date, *, max_days: int, language: str) -> Window:
    for name, day in (("start_date", first), ("end_date", last)):
        if not EARLIEST <= day <= LATEST:  # beyond, the previous window (or a year before) cannot be dated
            raise InvalidInput(
                f"{name} must be between {EARLIEST} and {LATEST}", field=name, value=day.isoformat()
            )
    if first > last:
        raise InvalidInput(
            f"start_date ({first}) must not be after end_date ({last})", field="start_date", value=str(first)
        )
    if (last - first).days + 1 > max_days:
        raise InvalidInput(
            f"the window from {first} to {last} is longer than the maximum of {max_days} days",
            field="end_date",
            value=str(last),
        )
    return Window(first=first, last=last, label=dates_label(first, last, language))


def dates_label(first: date, last: date, language: str = "en") -> str:
    """A custom window by its dates: "Thursday 2026-12-03" for one day, else "2026-11-01 to 2026-11-30"."""
    if first == last:
        return f"{format_date(first, 'EEEE', locale=language).capitalize()} {first.isoformat()}"
    return _CUSTOM_LABEL[language].format(first=first.isoformat(), last=last.isoformat())
