"""Prometheus metrics of one process: `GET /metrics` on an API process, `WORKER_METRICS_PORT` on a worker
(each process is scraped on its own). Every metric is defined here, once; the modules that count import it."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from salesflow.models.reports import JobOutcome

HTTP_REQUESTS = Counter(
    "salesflow_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["route", "status"],
)
HTTP_DURATION = Histogram(
    "salesflow_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CACHE_LOOKUPS = Counter(
    "salesflow_cache_lookups_total",
    "Cached results looked up, by pipeline and result (hit, miss)",
    ["pipeline", "result"],
)
JAVA_CALLS = Counter(
    "salesflow_java_calls_total",
    "Calls on the Java service, by outcome (ok, rejected, unavailable, timeout, circuit_open)",
    ["outcome"],
)
JAVA_DURATION = Histogram(
    "salesflow_java_call_duration_seconds",
    "Time of a Java call, retries included",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60),
)
JAVA_CIRCUIT = Gauge(
    "salesflow_java_circuit_open", "1 while the Java circuit breaker is open or probing, else 0"
)
JOBS = Counter(
    "salesflow_jobs_total", "Background jobs run in this process, by task and status", ["task", "status"]
)
EVENT_LOOP_LAG = Histogram(
    "salesflow_event_loop_lag_seconds",
    "How late the event loop woke a timer (every request of the process waited as long)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GC_PAUSE = Histogram(
    "salesflow_gc_pause_seconds",
    "How long a garbage collection stopped the process, by generation (the event loop waited as long)",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
JOB_DURATION = Histogram(
    "salesflow_job_duration_seconds",
    "Time a background job ran, by task and status",
    ["task", "status"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
JOB_QUEUE = Gauge(
    "salesflow_job_queue_messages",
    "Messages of each job queue: waiting for a worker, or delivered and not yet done (read at scrape)",
    ["queue", "state"],
)
REPORT_JOBS = Gauge(
    "salesflow_report_jobs", "Report jobs in the state database, by status (read at scrape)", ["status"]
)
SCHEDULE_FIRINGS = Counter(
    "salesflow_schedule_firings_total", "Scheduled runs fired by this process", ["kind"]
)
ALERT_EVALUATIONS = Counter(
    "salesflow_alert_evaluations_total", "Evaluations of the alert rules, by trigger", ["trigger"]
)
MAILS = Counter("salesflow_mails_total", "E-mails handed to SMTP, by result (sent, failed)", ["result"])
UPLOAD_PARSER_KILLS = Counter(
    "salesflow_upload_parser_kills_total", "Upload parsers stopped in their sandbox, by reason", ["reason"]
)
DEMAND_BATCH_COMPLETED_METRIC = "salesflow_demand_batch_completed_timestamp_seconds"  # benches wait on it
DEMAND_BATCH_COMPLETED = Gauge(
    DEMAND_BATCH_COMPLETED_METRIC,
    "When this process last completed the day's demand-forecast batch (Unix time; 0: not yet)",
)
HEADER_TIMEOUTS = Counter(
    "salesflow_http_header_timeouts_total", "Connections closed because request headers came too slowly"
)


def circuit_changed(is_open: bool) -> None:
    JAVA_CIRCUIT.set(1 if is_open else 0)


def exposition() -> tuple[bytes, str]:
    """The metrics as Prometheus text, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


class JobMetrics(TaskiqMiddleware):
    """Counts each job and its duration as it ends (Taskiq measures the execution time)."""

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        # A task that handles its own failure (it records why) returns how it ended; raising is a failure too.
        if result.is_err:
            status = JobOutcome.FAILED
        elif isinstance(result.return_value, JobOutcome):
            status = result.return_value
        else:
            status = JobOutcome.SUCCEEDED
        JOBS.labels(message.task_name, status).inc()
        JOB_DURATION.labels(message.task_name, status).observe(result.execution_time)
