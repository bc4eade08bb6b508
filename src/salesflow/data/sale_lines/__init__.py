"""Columnar cache of sale lines and products, shared by every pipeline.

Java's history has no pagination, so reading it per request re-downloads tens of MB. This cache keeps
the lines of the last `SALES_HISTORY_DAYS` in memory, sorted by time, with each line's business day
(`BUSINESS_TZ`) precomputed (`frames`). What it reads, and when (`policy`):

- cold: load the whole `SALES_HISTORY_DAYS` (from midnight, a day more for time-zone offsets) once, which
  serves every pipeline of a request burst, the ML pipelines' full history included;
- a window older than that extends what is kept back to its start in one read (Java's history always runs
  to now), up to `SALES_MAX_HISTORY_DAYS`; the next full reload drops the extension again;
- warm: at most one incremental refresh per `SALES_REFRESH_SECONDS`: fetch the lines since the start of the
  day before the last refresh and replace that tail (merge by time range and sale id);
- a full reload every `SALES_FULL_RELOAD_SECONDS` picks up edits and deletions;
- with Redis, the loaded lines are shared as an Arrow snapshot, so other processes start warm (`snapshot`).

Java stays the source of truth (`refresher`): when a refresh fails, or takes longer than
`SALES_REFRESH_WAIT_SECONDS`, the last lines are served (logged, and flagged through `stale_since`); when
there are none, the caller waits and a failure propagates. Concurrent callers share one fetch, so a request
burst reads the source once. `cache.SaleLineCache` puts these together.
"""

from salesflow.data.sale_lines.cache import SaleLineCache
from salesflow.data.sale_lines.frames import Clock, LinesState, business_days, days_between, utc_now
from salesflow.data.sale_lines.snapshot import SNAPSHOT_KEY

__all__ = [
    "SNAPSHOT_KEY",
    "Clock",
    "LinesState",
    "SaleLineCache",
    "business_days",
    "days_between",
    "utc_now",
]
