"""JSON log lines carry the request id and the structured fields; the event-loop watch sees a blocked loop
and the garbage collector's pauses."""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import time

import orjson
import pytest
from prometheus_client import REGISTRY

from salesflow.cli import OPEN_FILES_WHEN_UNLIMITED, raise_descriptor_limit
from salesflow.observability import JsonFormatter, request_id_var, watch_event_loop

BLOCKED_SECONDS = 0.5  # the first tick wakes at least 0.5 - 0.05 s late


def test_log_line_is_json_with_request_id_and_extra_fields() -> None:
    record = logging.LogRecord("salesflow.access", logging.INFO, __file__, 1, "request", None, None)
    record.__dict__.update({"route": "/api/v1/health", "status": 200, "duration_ms": 1.5})
    token = request_id_var.set("req-42")
    try:
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-42"
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "salesflow.access", "request")
    assert (line["route"], line["status"], line["duration_ms"]) == ("/api/v1/health", 200, 1.5)


def test_log_line_without_request_has_no_request_id() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world" and "request_id" not in line


def _lag_count(at_least: str) -> float:
    return REGISTRY.get_sample_value("salesflow_event_loop_lag_seconds_bucket", {"le": at_least}) or 0.0


async def test_a_blocked_event_loop_is_measured_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    total_before = REGISTRY.get_sample_value("salesflow_event_loop_lag_seconds_count") or 0.0
    short_before = _lag_count("0.25")
    watch = asyncio.create_task(watch_event_loop(tick_seconds=0.05, warn_seconds=0.2))
    try:
        await asyncio.sleep(0.01)  # the watch is asleep on its timer
        time.sleep(BLOCKED_SECONDS)  # noqa: ASYNC251 - blocking the loop is the point
        # The watch's overdue timer runs before this later one: an ordering of the loop, not a wait.
        await asyncio.sleep(0.05)
    finally:
        watch.cancel()
    # The blocked tick landed in a bucket above 0.25 s (a lag is never shorter than the block).
    counted = (REGISTRY.get_sample_value("salesflow_event_loop_lag_seconds_count") or 0.0) - total_before
    assert counted - (_lag_count("0.25") - short_before) >= 1
    assert any(
        r.message == "event loop blocked" and r.__dict__["lag_seconds"] >= 0.25 for r in caplog.records
    )


def test_serving_lifts_the_open_file_limit_to_its_ceiling() -> None:
    """At a soft limit of 1,024, a thousand slow connections once left `/health` no descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        raised = raise_descriptor_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
        assert raised == (hard if hard != resource.RLIM_INFINITY else OPEN_FILES_WHEN_UNLIMITED)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_garbage_collection_pauses_are_measured_by_generation() -> None:
    before = _gc_pauses()
    callbacks = len(gc.callbacks)
    watch = asyncio.create_task(watch_event_loop(tick_seconds=0.01))
    try:
        await asyncio.sleep(0)  # the watch has registered its callback and sleeps on its timer
        gc.collect()  # a full collection: generation 2
        # The watch records what it noted at its tick, due before this later timer: an ordering, not a wait.
        await asyncio.sleep(0.02)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    assert _gc_pauses() >= before + 1
    assert len(gc.callbacks) == callbacks  # a stopped watch leaves no callback behind


def _gc_pauses() -> float:
    return REGISTRY.get_sample_value("salesflow_gc_pause_seconds_count", {"generation": "2"}) or 0.0
