"""The days of the week, spelled once: Monday is 0, as `date.weekday()` counts."""

from __future__ import annotations

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# As settings and crontab write them: `mon` … `sun`.
WEEKDAY_CODES = tuple(name[:3].lower() for name in WEEKDAY_NAMES)
