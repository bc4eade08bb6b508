"""What the line cache keeps, and when it reads the source again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from salesflow.data.sale_lines.frames import LinesState

# `full`: everything kept, from `history_days` back; `extend`: back to an older window's start, up to
# `max_history_days`; `tail`: the lines since the day before the last refresh.
RefreshKind = Literal["full", "extend", "tail"]


@dataclass(frozen=True)
class RefreshPolicy:
    history_days: int = 400
    max_history_days: int = 800  # never below `history_days`
    refresh_seconds: float = 15.0  # a tail refresh, and a products refresh, at most this often
    refresh_wait_seconds: float = 1.0  # how long a caller with known data waits for a refresh
    full_reload_seconds: float = 3600.0  # edits and deletions show up after a full reload

    @staticmethod
    def start_of_history(today: date, days: int) -> datetime:
        """Midnight (Java-local) `days` days before `today`, and a day more for business-zone offsets."""
        return datetime.combine(today - timedelta(days=days + 1), datetime.min.time())

    def lines_due(
        self,
        state: LinesState | None,
        since: datetime,
        now: datetime,
        *,
        full_reload_asked: bool,
        seconds_since_refresh: float,
        behind_writes: bool,
    ) -> RefreshKind | None:
        """The refresh a read of the lines since `since` needs first; None: the kept lines will do."""
        # Cold: load everything kept, so that every pipeline of a burst is served. A full reload (periodic, or
        # after a write of dated sales) starts there too, dropping any extension.
        if (
            state is None
            or full_reload_asked
            or (now - state.loaded_at).total_seconds() >= self.full_reload_seconds
        ):
            return "full"
        if since < state.since:  # an older window: keep its lines too, one read for all its kind
            return "extend"
        if seconds_since_refresh >= self.refresh_seconds or behind_writes:
            return "tail"
        return None

    def products_due(self, *, known: bool, seconds_since_refresh: float, behind_writes: bool) -> bool:
        return not known or seconds_since_refresh >= self.refresh_seconds or behind_writes
