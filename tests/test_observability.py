"""JSON log lines carry the request id and the structured fields."""

from __future__ import annotations

import logging

import orjson

from salesflow.observability import JsonFormatter, request_id_var


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
