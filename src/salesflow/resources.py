"""Composition root: builds and closes the long-lived objects (settings → cache, state database, job runtime,
HTTP client, data source, pipelines).

The API lifespan, the CLI and the worker open them with `async with open_resources(settings)`; nothing
connects at import time. Each close is registered on an `AsyncExitStack` as its resource is built, so a
failure half-way closes exactly what was opened, and the block's end closes everything in reverse order.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx

from salesflow.clients.circuit import CircuitBreaker, CircuitState
from salesflow.clients.mail.notifier import FolderNotifier, Notifier, SmtpNotifier
from salesflow.config import Settings
from salesflow.data.cache import Cache, MemoryBackend, RedisBackend
from salesflow.data.sale_lines import Clock, SaleLineCache, utc_now
from salesflow.data.sources.base import DataSource
from salesflow.data.sources.embedded import EmbeddedDataSource, EmbeddedStore
from salesflow.data.sources.java import JavaDataSource
from salesflow.data.sources.java_client import JavaClient
from salesflow.integration.jwt import TokenValidator
from salesflow.jobs.runtime import JobRuntime
from salesflow.metrics import circuit_changed
from salesflow.sandbox import Limits, Sandbox
from salesflow.services.alerting.pipeline import AlertService
from salesflow.services.analytics.demand import DemandRule
from salesflow.services.analytics.sales import SalesAnalyticsService
from salesflow.services.analytics.stock import StockAnalyticsService
from salesflow.services.excel_import.admission import UploadAdmission
from salesflow.services.excel_import.pipeline import ImportService, read_and_validate
from salesflow.services.health import Check, ReadinessChecks, disk_check
from salesflow.services.ml.accuracy import ForecastAccuracy
from salesflow.services.ml.anomalies import AnomalyRules, AnomalyService
from salesflow.services.ml.demand_forecasts import DemandForecasts
from salesflow.services.ml.forecasting import ForecastService
from salesflow.services.notifications import Notifications
from salesflow.services.reports.artifacts import ArtifactStore
from salesflow.services.reports.content import ReportGatherer
from salesflow.services.reports.pipeline import ReportService
from salesflow.services.sales_recording import SalesRecorder
from salesflow.services.schedules import ScheduleService
from salesflow.services.shop_calendar import ShopCalendar
from salesflow.state.alerts import Alerts
from salesflow.state.database import StateDatabase, default_url
from salesflow.state.demand_batches import DemandBatches
from salesflow.state.forecast_scores import ForecastScores
from salesflow.state.imports import ImportStore
from salesflow.state.outbox import Outbox
from salesflow.state.report_jobs import ReportJobs
from salesflow.state.schedules import Schedules

logger = logging.getLogger(__name__)


@dataclass
class Resources:
    """Everything a request, job or command needs beyond its own input."""

    settings: Settings
    cache: Cache
    data_source: DataSource
    token_validator: TokenValidator | None
    lines: SaleLineCache
    sales_analytics: SalesAnalyticsService
    stock_analytics: StockAnalyticsService
    sales_recorder: SalesRecorder
    forecasts: ForecastService
    anomalies: AnomalyService
    demand_forecasts: DemandForecasts
    imports: ImportService
    state: StateDatabase
    jobs: JobRuntime
    reports: ReportService
    schedules: ScheduleService
    notifications: Notifications
    alerts: AlertService
    scheduler: Check | None = None  # the running scheduler's readiness check, when this process schedules
    http: httpx.AsyncClient | None = None
    java: JavaClient | None = None
    store: EmbeddedStore | None = None

    def readiness_checks(self) -> ReadinessChecks:
        """What `/health/ready` checks in this configuration."""
        settings, redis = self.settings, self.cache.redis
        required: dict[str, Check] = {
            "data_source": self.data_source.check,
            "state_database": self.state.check,
            "disk": disk_check([settings.source.data_dir, settings.reports.export_dir]),
        }
        # E-mails that fail stay in the outbox and show here (the service itself still works).
        degradable: dict[str, Check] = {"mail_outbox": self.notifications.check}
        notifier = self.notifications.notifier
        if isinstance(notifier, SmtpNotifier):  # mail waits in the outbox while the server is away
            degradable["smtp"] = notifier.check
        disabled: dict[str, str] = {}
        # A stopped scheduler delays scheduled runs (caught up at the next start); requests still work.
        if self.scheduler is not None:
            degradable["scheduler"] = self.scheduler
        else:
            disabled["scheduler"] = "SCHEDULER_ENABLED=false (another process may schedule)"
        if redis is None:
            disabled["redis"] = "REDIS_URL not set"
        elif settings.jobs.backend == "redis":  # the broker: jobs cannot be queued without it
            required["redis"] = redis.ping
        else:  # as a cache only, Redis down degrades: the in-process cache serves meanwhile
            degradable["redis"] = redis.ping
        return ReadinessChecks(required=required, degradable=degradable, disabled=disabled)


@asynccontextmanager
async def open_resources(settings: Settings, *, clock: Clock = utc_now) -> AsyncIterator[Resources]:
    """Every long-lived object, built from settings and closed in reverse order when the block ends (or when
    building fails half-way: exactly what was built is closed).

    `clock` (aware "now") is injectable so that tests can pin "today".
    """
    async with AsyncExitStack() as stack:
        yield await _build(settings, clock, stack)


async def _build(settings: Settings, clock: Clock, stack: AsyncExitStack) -> Resources:
    for folder in (settings.source.data_dir, settings.reports.export_dir):
        folder.mkdir(parents=True, exist_ok=True)
    cache = Cache(
        redis=RedisBackend.from_url(settings.storage.redis_url) if settings.storage.redis_url else None,
        memory=MemoryBackend(max_entries=settings.cache.memory_max_entries),
        redis_retry_seconds=settings.cache.redis_retry_seconds,
    )
    stack.push_async_callback(cache.aclose)
    state = await stack.enter_async_context(
        StateDatabase.open(settings.storage.state_database_url or default_url(settings.source.data_dir))
    )
    await state.migrate()
    jobs = JobRuntime.from_settings(settings)
    await jobs.startup()
    stack.push_async_callback(jobs.shutdown)  # if what follows fails; else the later call (below) closes it
    secret = settings.java.jwt_secret_bytes
    validator = (
        TokenValidator(
            secret=secret, issuer=settings.java.jwt_issuer, leeway_seconds=settings.java.jwt_leeway_seconds
        )
        if secret is not None
        else None
    )
    adapters: dict[str, Any] = {}
    if settings.uses_java:
        http = build_java_http_client(settings)
        stack.push_async_callback(http.aclose)
        java = JavaClient(
            http=http,
            service_phone=settings.java.service_phone,
            service_password=settings.java.service_password,
            system_token=settings.java.system_token,
            read_retries=settings.java.read_retries,
            deadline_seconds=settings.java.deadline_seconds,
            circuit=CircuitBreaker(
                failure_threshold=settings.java.circuit_failures,
                open_seconds=settings.java.circuit_open_seconds,
                on_change=lambda state: circuit_changed(state is not CircuitState.CLOSED),
            ),
        )
        source: DataSource = JavaDataSource(
            java, timezone=ZoneInfo(settings.source.timezone), root_url=settings.java.root_url, clock=clock
        )
        adapters.update(http=http, java=java)
    else:
        store = await anyio.to_thread.run_sync(EmbeddedStore, settings.source.embedded_db_path)
        if settings.dev_mode:
            await anyio.to_thread.run_sync(ensure_demo_data, store, settings, clock)
        source = EmbeddedDataSource(store, timezone=ZoneInfo(settings.source.timezone), clock=clock)
        adapters.update(store=store)
    stack.push_async_callback(source.aclose)
    resources = _with_pipelines(settings, cache, source, validator, clock, state=state, jobs=jobs, **adapters)
    stack.push_async_callback(resources.lines.aclose)
    stack.push_async_callback(resources.demand_forecasts.aclose)
    # Closed first: running jobs finish (or are cancelled) before the sources and caches they use close.
    stack.push_async_callback(jobs.shutdown)
    jobs.attach(reports=resources.reports, demand=resources.demand_forecasts, alerts=resources.alerts)
    jobs.hand_back = resources.reports.hand_back
    return resources


def _with_pipelines(
    settings: Settings,
    cache: Cache,
    source: DataSource,
    validator: TokenValidator | None,
    clock: Clock,
    *,
    state: StateDatabase,
    jobs: JobRuntime,
    **adapters: Any,
) -> Resources:
    """The pipelines' services on top of the data source, cache, state database and job runtime."""
    lines = SaleLineCache(
        source,
        cache,
        java_tz=ZoneInfo(settings.source.timezone),
        business_tz=ZoneInfo(settings.shop.business_tz),
        history_days=settings.sales.history_days,
        max_history_days=settings.sales.max_history_days,
        refresh_seconds=settings.sales.refresh_seconds,
        refresh_wait_seconds=settings.sales.refresh_wait_seconds,
        full_reload_seconds=settings.sales.full_reload_seconds,
        clock=clock,
    )
    rule = DemandRule(
        window_days=settings.analytics.demand_window_days,
        lead_days=settings.analytics.reorder_lead_days,
        review_days=settings.analytics.review_period_days,
        service_level=settings.analytics.service_level,
    )
    ttl = settings.cache.ttl_analytics_seconds
    recorder = SalesRecorder(source, lines, cache)
    ml_ttl, history = settings.cache.ttl_ml_seconds, settings.sales.history_days
    calendar = ShopCalendar.from_settings(
        country=settings.shop.country,
        subdivision=settings.shop.subdivision,
        closed_dates=settings.shop.closure_days,
        closed_weekdays=settings.shop.closed_weekdays,
    )
    forecasts = ForecastService(lines, cache, ttl_seconds=ml_ttl, history_days=history, calendar=calendar)
    accuracy = ForecastAccuracy(
        ForecastScores(state, clock=clock), lines, kept_days=settings.forecasting.accuracy_days
    )
    demand_forecasts = DemandForecasts(
        lines,
        cache,
        forecasts,
        DemandBatches(state, clock=clock),
        accuracy,
        lead_days=settings.analytics.reorder_lead_days,
        workers=settings.forecasting.batch_workers,
        # With job workers, the batch is split into chunks they share; embedded, one process pool runs it.
        enqueue_chunk=jobs.enqueue_demand_chunk if settings.jobs.backend == "redis" else None,
        chunk_products=settings.forecasting.chunk_products,
    )
    sales_analytics = SalesAnalyticsService(
        lines,
        cache,
        ttl_seconds=ttl,
        max_window_days=settings.analytics.max_window_days,
        language=settings.analytics.label_language,
    )
    stock_analytics = StockAnalyticsService(
        lines,
        cache,
        ttl_seconds=ttl,
        rule=rule,
        dead_stock_days=settings.analytics.dead_stock_days,
        language=settings.analytics.label_language,
        mode="dev" if settings.dev_mode else "prod",
        forecasts=demand_forecasts if settings.forecasting.demand_batch else None,
    )
    anomaly_rules = AnomalyRules(
        min_change=settings.anomalies.min_change,
        min_units=settings.anomalies.min_units,
        min_revenue=settings.anomalies.min_revenue,
        min_history_days=settings.anomalies.min_history_days,
        calendar=calendar,
    )
    anomalies = AnomalyService(lines, cache, ttl_seconds=ml_ttl, history_days=history, rules=anomaly_rules)
    reports = ReportService(
        ReportJobs(state, clock=clock),
        ReportGatherer(
            sales_analytics, stock_analytics, forecasts, anomalies, accuracy, formats=settings.shop.formats
        ),
        ArtifactStore(settings.reports.export_dir),
        enqueue=jobs.enqueue_report,
        business_tz=ZoneInfo(settings.shop.business_tz),
        clock=clock,
        max_window_days=settings.analytics.max_window_days,
        lease_seconds=settings.jobs.lease_seconds,
        timeout_seconds=settings.reports.job_timeout_seconds,
        max_attempts=settings.reports.max_attempts,
        jobs_per_user=settings.reports.jobs_per_user,
    )
    outbox = Outbox(state, clock=clock)
    notifications = Notifications(outbox, build_notifier(settings))
    alerts = AlertService(
        Alerts(state, outbox, clock=clock),
        stock_analytics,
        lines,
        anomaly_rules=anomaly_rules,
        demand_rule=rule,
        dead_stock_days=settings.analytics.dead_stock_days,
        anomaly_days=settings.alerts.anomaly_days,
        anomaly_min_share=settings.alerts.anomaly_min_share,
        history_days=history,
        recipients=settings.alerts.recipients,
        notify_from=settings.alerts.email_min_severity,
        zone=ZoneInfo(settings.shop.business_tz),
        clock=clock,
        formats=settings.shop.formats,
        digest_hour=settings.alerts.digest_hour,
    )
    schedules = ScheduleService(
        Schedules(state, clock=clock),
        reports,
        notifications,
        default_timezone=settings.shop.business_tz,
        clock=clock,
        admin_email=settings.mail.admin_email,
    )
    reports.on_completed = schedules.deliver
    reports.on_failed = schedules.report_failure
    return Resources(
        settings=settings,
        cache=cache,
        data_source=source,
        token_validator=validator,
        lines=lines,
        sales_analytics=sales_analytics,
        stock_analytics=stock_analytics,
        sales_recorder=recorder,
        imports=ImportService(
            lines,
            recorder,
            ImportStore(state, clock=clock),
            Sandbox(preload=[read_and_validate.__module__], concurrency=settings.imports.parsers),
            UploadAdmission(
                parsers=settings.imports.parsers,
                waiting=settings.imports.uploads_waiting,
                per_user=settings.imports.uploads_per_user,
            ),
            limits=Limits(
                memory_bytes=settings.imports.parser_memory_mb * 2**20,
                cpu_seconds=settings.imports.parser_cpu_seconds,
                wall_seconds=settings.imports.parser_wall_seconds,
            ),
            writes_keep_history=source.kind == "embedded",
            max_rows=settings.imports.max_rows,
            batch_sales=settings.imports.batch_sales,
        ),
        forecasts=forecasts,
        anomalies=anomalies,
        demand_forecasts=demand_forecasts,
        state=state,
        jobs=jobs,
        reports=reports,
        schedules=schedules,
        notifications=notifications,
        alerts=alerts,
        **adapters,
    )


def build_notifier(settings: Settings) -> Notifier:
    """SMTP when `SMTP_HOST` is set, else `.eml` files in `OUTBOX_DIR`."""
    if settings.mail.smtp_host:
        return SmtpNotifier(
            host=settings.mail.smtp_host,
            port=settings.mail.smtp_port,
            sender=settings.mail.sender,
            username=settings.mail.smtp_username,
            password=settings.mail.smtp_password,
            start_tls=settings.mail.smtp_starttls,
            use_tls=settings.mail.smtp_use_tls,
            timeout=settings.mail.smtp_timeout_seconds,
        )
    return FolderNotifier(settings.mail.outbox_dir, sender=settings.mail.sender)


def build_java_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one pooled HTTP client per process for Java."""
    return httpx.AsyncClient(
        base_url=settings.java.api_url,
        timeout=httpx.Timeout(settings.java.timeout_seconds, connect=5.0),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        trust_env=False,  # never route the system of record through an environment proxy
    )


def ensure_demo_data(store: EmbeddedStore, settings: Settings, clock: Clock = utc_now) -> None:
    """Seed the demo history on first start, and extend it to today on later days."""
    today = clock().astimezone(ZoneInfo(settings.source.timezone)).date()
    if store.is_empty():
        logger.info("seeding demo data (first start)")
        result = store.seed_demo(
            today=today,
            n_products=settings.source.demo_products,
            days=settings.source.demo_days,
            seed=settings.source.demo_seed,
        )
        logger.info("demo data seeded", extra={"sales": result.sales_written, "lines": result.lines_written})
        return
    result = store.extend_demo(today=today)
    if result.sales_written:
        logger.info("demo data extended to today", extra={"sales": result.sales_written})
