"""Structured JSON logs carrying the current request id, and the event-loop watch every process runs."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import sys
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson

from salesflow.metrics import EVENT_LOOP_LAG, GC_PAUSE

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # library warnings become log records, in the same JSON lines
    # uvicorn's access log repeats what our middleware logs with more context.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


LOOP_TICK_SECONDS = 0.25
LOOP_LAG_WARN_SECONDS = 0.1  # a request waits this long for the loop: worth a log line with its size


async def watch_event_loop(
    tick_seconds: float = LOOP_TICK_SECONDS, warn_seconds: float = LOOP_LAG_WARN_SECONDS
) -> None:
    """Measure how late the loop wakes a sleeper (`salesflow_event_loop_lag_seconds`): anything that blocks
    it (CPU work, a blocking call, a garbage collection: `salesflow_gc_pause_seconds`) delays every request of
    the process by as much."""
    logger = logging.getLogger(__name__)
    pauses = GarbageCollectionPauses()
    gc.callbacks.append(pauses)
    try:
        while True:
            started = time.monotonic()
            await asyncio.sleep(tick_seconds)
            lag = max(0.0, time.monotonic() - started - tick_seconds)
            EVENT_LOOP_LAG.observe(lag)
            pauses.record()
            if lag > warn_seconds:
                logger.warning("event loop blocked", extra={"lag_seconds": round(lag, 3)})
    finally:
        gc.callbacks.remove(pauses)


class GarbageCollectionPauses:
    """A `gc.callbacks` entry timing each collection. It only notes the pause (a collection can start inside
    any allocation, even one holding a metric's lock); `record` observes the notes from the event loop."""

    def __init__(self) -> None:
        self._started = 0.0
        self._pauses: deque[tuple[int, float]] = deque(maxlen=10_000)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pauses.append((info["generation"], time.perf_counter() - self._started))

    def record(self) -> None:
        while self._pauses:
            generation, seconds = self._pauses.popleft()
            GC_PAUSE.labels(generation=str(generation)).observe(seconds)
