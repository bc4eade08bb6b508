"""The line cache's refresh policy alone: which read a request for lines since a time needs first."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pandas as pd

from salesflow.data.sale_lines.frames import LinesState
from salesflow.data.sale_lines.policy import RefreshPolicy

NOW = datetime(2026, 3, 10, 12, 0)
POLICY = RefreshPolicy(history_days=400, max_history_days=800, refresh_seconds=15, full_reload_seconds=3600)
KEPT = LinesState(
    lines=pd.DataFrame(),
    since=POLICY.start_of_history(NOW.date(), 400),
    refreshed_at=NOW - timedelta(seconds=20),
    loaded_at=NOW - timedelta(minutes=30),
)


def due(
    state: LinesState | None,
    since: datetime,
    *,
    full_reload_asked: bool = False,
    seconds_since_refresh: float = 1.0,
    behind_writes: bool = False,
) -> str | None:
    return POLICY.lines_due(
        state,
        since,
        NOW,
        full_reload_asked=full_reload_asked,
        seconds_since_refresh=seconds_since_refresh,
        behind_writes=behind_writes,
    )


def test_the_kept_history_starts_at_midnight_a_day_before_its_days() -> None:
    assert POLICY.start_of_history(date(2026, 3, 10), 400) == datetime(2025, 2, 2)


def test_a_cold_cache_a_full_reload_asked_for_or_an_old_load_reads_everything() -> None:
    recent = NOW - timedelta(days=7)
    assert due(None, recent) == "full"
    assert due(KEPT, recent, full_reload_asked=True) == "full"
    assert due(replace(KEPT, loaded_at=NOW - timedelta(hours=1)), recent) == "full"


def test_an_older_window_extends_what_is_kept() -> None:
    assert due(KEPT, KEPT.since - timedelta(days=1)) == "extend"
    assert due(KEPT, KEPT.since) is None


def test_the_tail_is_read_again_when_due_or_after_a_write_only() -> None:
    recent = NOW - timedelta(days=7)
    assert due(KEPT, recent) is None
    assert due(KEPT, recent, seconds_since_refresh=15.0) == "tail"
    assert due(KEPT, recent, behind_writes=True) == "tail"


def test_products_are_read_when_unknown_due_or_behind_a_write() -> None:
    assert not POLICY.products_due(known=True, seconds_since_refresh=1.0, behind_writes=False)
    assert POLICY.products_due(known=False, seconds_since_refresh=1.0, behind_writes=False)
    assert POLICY.products_due(known=True, seconds_since_refresh=15.0, behind_writes=False)
    assert POLICY.products_due(known=True, seconds_since_refresh=1.0, behind_writes=True)
