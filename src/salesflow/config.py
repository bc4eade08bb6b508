"""Typed settings, read once from the environment and `.env`.

Only this module touches `os.environ`. Everything else receives a `Settings` instance (or just the group or
fields it needs) from the composition root (`resources.py`), the CLI or the API dependencies.

Settings are grouped by area (`settings.java.timeout_seconds`); each keeps its flat environment name
(`JAVA_TIMEOUT_SECONDS`), declared once as the field's alias. The README's settings table and `.env.example`
are written from these models (`tests/readme_tables.py`).
"""

from __future__ import annotations

import functools
import json
from datetime import date, timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeGuard, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from salesflow.formatting import Formats, currency_of, known_currency
from salesflow.models.alerts import AlertKind, Severity
from salesflow.models.jobs import JobQueue
from salesflow.models.weekdays import WEEKDAY_CODES
from salesflow.models.zones import known_zone

DEFAULT_CORS_ORIGINS = (
    "http://127.0.0.1:5174",
    "http://localhost:5174",
    "http://127.0.0.1:4173",
    "http://localhost:4173",
    "http://127.0.0.1:5173",
    "http://localhost:5173",
)
MIN_SECRET_BYTES = 32
MIN_TOKEN_CHARS = 24
MAX_CLOSURE_DAYS = 366

AppEnv = Literal["development", "test", "staging", "production"]
DataSourceKind = Literal["auto", "embedded", "java"]
CommaList = Annotated[list[str], NoDecode]


def split_list(text: str) -> list[str]:
    """`a, b` or a JSON list."""
    text = text.strip()
    if text.startswith("["):
        return [str(item) for item in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def _split_csv(value: object) -> object:
    """Accept `a,b` as well as a JSON list in the environment."""
    return split_list(value) if isinstance(value, str) else value


def closed_days(item: str) -> list[date]:
    """`2026-12-24` or the range `2026-12-24..2027-01-02` (both ends included)."""
    first, _, last = item.strip().partition("..")
    start = date.fromisoformat(first.strip())
    end = date.fromisoformat(last.strip()) if last else start
    if not 0 <= (end - start).days < MAX_CLOSURE_DAYS:
        raise ValueError(f"closed range {item!r} must run forwards and span at most {MAX_CLOSURE_DAYS} days")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def env(name: str, default: Any = ..., *, doc: str, **constraints: Any) -> Any:
    """A setting read from the environment variable `name`, described for the README and `.env.example`."""
    return Field(default, alias=name.lower(), description=doc, **constraints)


class SettingsGroup(BaseModel):
    """The settings of one area; each field's alias is its environment variable."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="ignore")
    title: ClassVar[str]


class SourceSettings(SettingsGroup):
    title = "Data source and the embedded store"

    kind: DataSourceKind = env(
        "DATA_SOURCE", "auto", doc="`auto` (DEV: embedded store, PROD: Java), `embedded` or `java`"
    )
    timezone: str = env("JAVA_TIMEZONE", "UTC", doc="IANA zone of Java's naive `LocalDateTime` values")
    data_dir: Path = env(
        "DATA_DIR", Path("var/data"), doc="embedded store (`salesflow.duckdb`) and the default state database"
    )
    demo_products: int = env("DEMO_PRODUCTS", 300, ge=10, doc="products in the DEV demo history")
    demo_days: int = env("DEMO_DAYS", 730, ge=30, doc="days of the DEV demo history")
    demo_seed: int = env("DEMO_SEED", 42, doc="random seed of the DEV demo history")

    @field_validator("timezone")
    @classmethod
    def _known_java_zone(cls, value: str) -> str:
        return known_zone(value)

    @property
    def embedded_db_path(self) -> Path:
        return self.data_dir / "salesflow.duckdb"


class HTTPSettings(SettingsGroup):
    title = "HTTP server"

    host: str = env("HOST", "127.0.0.1", doc="listen address (`salesflow serve --host` overrides it)")
    port: int = env("PORT", 8081, ge=1, le=65535, doc="listen port (`salesflow serve --port` overrides it)")
    header_timeout_seconds: float = env(
        "HTTP_HEADER_TIMEOUT_SECONDS",
        10.0,
        gt=0,
        le=300,
        doc="`salesflow serve` closes a connection whose request headers are not complete this long after it"
        " opened or its request began (slow-header clients); counted in"
        " `salesflow_http_header_timeouts_total`",
    )
    cors_origins: CommaList = env(
        "CORS_ORIGINS",
        default_factory=lambda: [*DEFAULT_CORS_ORIGINS],
        doc="comma-separated or a JSON list; default: the frontend's six origins"
        " (`127.0.0.1`/`localhost` × `5173`, `5174`, `4173`)",
    )
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = env(
        "TRUSTED_PROXIES",
        default_factory=list,
        doc="addresses or networks (comma-separated) of the proxies in front: for a request from one of them,"
        " the client is the right-most `X-Forwarded-For` address that is not a trusted proxy (the"
        " failed-authentication limit is per client); from any other peer the header is ignored",
    )
    body_max_bytes: int = env(
        "REQUEST_BODY_MAX_BYTES",
        1024 * 1024,
        ge=1024,
        doc="largest JSON body (413, checked after authentication, while it streams); uploads:"
        " `IMPORT_MAX_BYTES`",
    )
    header_max_bytes: int = env("REQUEST_HEADER_MAX_BYTES", 16 * 1024, ge=1024, doc="largest headers (431)")
    docs_enabled: bool | None = env(
        "DOCS_ENABLED", None, doc="`/docs`, `/redoc`, `/openapi.json`; unset: in DEV mode only"
    )

    _lists = field_validator("cors_origins", "trusted_proxies", mode="before")(_split_csv)


class RateLimitSettings(SettingsGroup):
    title = "Rate limits"

    auth_failures: int = env(
        "RATE_LIMIT_AUTH_FAILURES",
        30,
        ge=0,
        doc="failed authentications a minute per client address; over it, 429 with `Retry-After`; counted in"
        " Redis when present (shared by every process), else per process; 0: off",
    )
    expensive: int = env(
        "RATE_LIMIT_EXPENSIVE",
        120,
        ge=0,
        doc="expensive requests a minute per user (forecasts, forecast accuracy, anomaly scans, import"
        " previews and commits, report jobs); over it, 429 with `Retry-After`; 0: off",
    )


class MetricsSettings(SettingsGroup):
    title = "Operations"

    enabled: bool = env("METRICS_ENABLED", True, doc="`GET /metrics` (Prometheus text) on")
    token: SecretStr | None = env(
        "METRICS_TOKEN",
        None,
        doc="in PROD, `GET /metrics` is readable with `Authorization: Bearer <METRICS_TOKEN>` (24+"
        " characters) or an ADMIN JWT; open in DEV",
    )
    worker_host: str = env(
        "WORKER_METRICS_HOST", "127.0.0.1", doc="a `salesflow worker`'s own metrics server"
    )
    worker_port: int = env(
        "WORKER_METRICS_PORT",
        0,
        ge=0,
        le=65535,
        doc="its port (jobs run in workers in the distributed shape); 0: none",
    )


class JavaSettings(SettingsGroup):
    title = "Java system of record"

    api_url: str = env(
        "JAVA_API_URL",
        "http://127.0.0.1:8080/api/v1",
        doc="the Java API base; its actuator is read at the same host without `/api/v1`",
    )
    jwt_secret: SecretStr | None = env(
        "JAVA_JWT_SECRET",
        None,
        doc="Java's `app.jwt.secret`, ≥ 32 bytes, used byte-for-byte; required unless `DEV_MODE=true`",
    )
    jwt_issuer: str = env("JWT_ISSUER", "salesflow-app", doc="required `iss` claim")
    jwt_leeway_seconds: int = env("JWT_LEEWAY_SECONDS", 30, ge=0, le=300, doc="clock leeway for `exp`")
    service_phone: str | None = env(
        "JAVA_SERVICE_PHONE",
        None,
        doc="with `JAVA_SERVICE_PASSWORD`: an ADMIN account for aggregate and background reads (logs"
        " in, renews before expiry)",
    )
    service_password: SecretStr | None = env("JAVA_SERVICE_PASSWORD", None, doc="that account's password")
    system_token: SecretStr | None = env(
        "SYSTEM_JWT_TOKEN",
        None,
        doc="or a fixed ADMIN token; PROD with the Java source needs one of the two",
    )
    timeout_seconds: float = env(
        "JAVA_TIMEOUT_SECONDS", 30.0, gt=0, doc="per-request timeout towards Java (connect: 5 s)"
    )
    read_retries: int = env(
        "JAVA_READ_RETRIES",
        2,
        ge=0,
        le=5,
        doc="retries of idempotent reads on transport errors and 502/503/504, with backoff",
    )
    deadline_seconds: float = env(
        "JAVA_DEADLINE_SECONDS",
        20.0,
        gt=0,
        doc="the longest one Java call may take in all, retries and backoff included (a hung Java costs this,"
        " not attempts × timeout)",
    )
    circuit_failures: int = env(
        "JAVA_CIRCUIT_FAILURES",
        3,
        ge=1,
        doc="failed Java calls in a row (timeouts, unreachable, 502/503/504) that open the circuit breaker;"
        " while open, Java is not called and requests answer at once from the last known lines and"
        " products or with a 503",
    )
    circuit_open_seconds: float = env(
        "JAVA_CIRCUIT_OPEN_SECONDS",
        10.0,
        gt=0,
        doc="how long the circuit stays open; then one probe call decides (recovery needs no restart)",
    )
    demo_port: int = env(
        "DEV_JAVA_PORT",
        8080,
        ge=0,
        le=65535,
        doc="DEV mode only: a Java-compatible demo API on 127.0.0.1 from the demo store, for the frontend"
        " (0: off)",
    )

    @field_validator("api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def jwt_secret_bytes(self) -> bytes | None:
        """The HMAC key exactly as Java uses it: the raw UTF-8 bytes, never trimmed."""
        if self.jwt_secret is None:
            return None
        return self.jwt_secret.get_secret_value().encode("utf-8")

    @property
    def has_service_login(self) -> bool:
        return bool(self.service_phone and self.service_password)

    @property
    def root_url(self) -> str:
        """Java's base URL without `/api/v1` (its actuator lives there)."""
        return self.api_url.removesuffix("/api/v1")


class StorageSettings(SettingsGroup):
    title = "Storage"

    redis_url: str | None = env(
        "REDIS_URL",
        None,
        doc="e.g. `redis://127.0.0.1:6379/0`: shared cache, rate limits and the job queue; unset: a bounded"
        " in-process cache",
    )
    state_database_url: str | None = env(
        "STATE_DATABASE_URL",
        None,
        doc="the service's own records (report jobs, alerts, mail…); unset: SQLite under `DATA_DIR`;"
        " `postgresql+asyncpg://…` in production",
    )
    retention_days: int = env(
        "STATE_RETENTION_DAYS",
        90,
        ge=1,
        doc="sent or failed mail, finished alert checks, resolved alerts, failed report jobs and"
        " completed ones whose file is gone, older than this, are deleted by the sweep, 500 rows per"
        " table a pass (schedules, open alerts and unsent mail are kept; imports go after a week,"
        " demand batches after a week, report files after `REPORT_RETENTION_DAYS`)",
    )


class CacheSettings(SettingsGroup):
    title = "Cache"

    ttl_analytics_seconds: int = env(
        "CACHE_TTL_ANALYTICS_SECONDS", 300, ge=1, doc="time to live of cached analytics results"
    )
    ttl_ml_seconds: int = env(
        "CACHE_TTL_ML_SECONDS", 3600, ge=1, doc="time to live of cached forecasts and scans"
    )
    memory_max_entries: int = env(
        "CACHE_MEMORY_MAX_ENTRIES", 2048, ge=16, doc="bound of the in-process cache (LRU)"
    )
    redis_retry_seconds: float = env(
        "CACHE_REDIS_RETRY_SECONDS", 5.0, gt=0, doc="how often a lost Redis is tried again"
    )


class SalesSettings(SettingsGroup):
    title = "Sale lines in memory (every pipeline reads through them)"

    history_days: int = env("SALES_HISTORY_DAYS", 400, ge=30, doc="days of sale lines kept in memory")
    max_history_days: int = env(
        "SALES_MAX_HISTORY_DAYS",
        800,
        ge=30,
        doc="how far back an older window may extend them (beyond: read alone)",
    )
    refresh_seconds: float = env(
        "SALES_REFRESH_SECONDS", 15.0, ge=0, doc="at most one incremental read per this many seconds"
    )
    refresh_wait_seconds: float = env(
        "SALES_REFRESH_WAIT_SECONDS",
        1.0,
        ge=0,
        doc="how long a request waits for a due refresh of known lines or products; past it, the answer uses"
        " the last known data (with `X-Data-Stale-Since`) while the refresh goes on. A first load, an older"
        " window and the read after a write through this service are always waited for",
    )
    full_reload_seconds: float = env("SALES_FULL_RELOAD_SECONDS", 3600.0, gt=0, doc="full reload period")


class AnalyticsSettings(SettingsGroup):
    title = "Analytics and stock"

    label_language: Literal["en", "fr"] = env(
        "LABEL_LANGUAGE", "en", doc="`en` or `fr`: language of period labels and hints"
    )
    max_window_days: int = env(
        "ANALYTICS_MAX_WINDOW_DAYS", 366, ge=1, doc="longest explicit analytics window"
    )
    dead_stock_days: int = env(
        "DEAD_STOCK_DAYS", 90, ge=1, doc="in stock with no sale for this long: dead stock"
    )
    demand_window_days: int = env("DEMAND_WINDOW_DAYS", 28, ge=1, doc="trailing days behind the demand rate")
    reorder_lead_days: int = env("REORDER_LEAD_DAYS", 7, ge=1, doc="supplier lead time")
    review_period_days: int = env(
        "REVIEW_PERIOD_DAYS", 14, ge=0, doc="days of demand an order covers beyond the reorder point"
    )
    service_level: float = env(
        "SERVICE_LEVEL", 0.95, gt=0.5, lt=1.0, doc="probability of not running out during the lead time"
    )


class ForecastingSettings(SettingsGroup):
    title = "Forecasting"

    demand_batch: bool = env(
        "DEMAND_FORECASTS",
        True,
        doc="forecast every product once a day in the background, for demand and reorder points",
    )
    batch_workers: int = env(
        "DEMAND_FORECAST_WORKERS",
        1,
        ge=1,
        le=16,
        doc="processes for that batch (per job worker, with `JOB_BACKEND=redis`)",
    )
    chunk_products: int = env(
        "DEMAND_CHUNK_PRODUCTS",
        100,
        ge=1,
        doc="with `JOB_BACKEND=redis`: products per batch job, shared by the workers",
    )
    accuracy_days: int = env(
        "FORECAST_ACCURACY_DAYS",
        91,
        ge=14,
        le=730,
        doc="how long the day's forecasts and their scores are kept (`GET /ml/accuracy`: up to 12 weeks"
        " back)",
    )
    warm_up: bool = env(
        "FORECAST_WARM_UP",
        True,
        doc="compile the forecasting models in the background at start, so that the first forecast is quick",
    )


class ImportSettings(SettingsGroup):
    title = "Excel import"

    max_bytes: int = env("IMPORT_MAX_BYTES", 20 * 1024 * 1024, ge=1024, doc="largest upload (413 past it)")
    max_rows: int = env("IMPORT_MAX_ROWS", 200_000, ge=1, doc="most data rows in one file")
    batch_sales: int = env("IMPORT_BATCH_SALES", 100, ge=1, le=10_000, doc="sales per `/sales/bulk` call")
    parser_memory_mb: int = env(
        "IMPORT_PARSER_MEMORY_MB",
        1024,
        ge=64,
        doc="memory the disposable process that reads one upload may use on top of what it starts with (413"
        " past it)",
    )
    parser_cpu_seconds: int = env(
        "IMPORT_PARSER_CPU_SECONDS", 60, ge=1, doc="CPU time that process may use (422 past it)"
    )
    parser_wall_seconds: float = env(
        "IMPORT_PARSER_WALL_SECONDS", 90.0, gt=0, doc="wall time that process may take (422 past it)"
    )
    parsers: int = env("IMPORT_PARSERS", 2, ge=1, le=32, doc="uploads read at once")
    uploads_waiting: int = env(
        "IMPORT_UPLOADS_WAITING",
        4,
        ge=0,
        le=1000,
        doc="per API process: uploads that may wait for a parser; past it, a 429 with `Retry-After`"
        " before the body is read into memory",
    )
    uploads_per_user: int = env(
        "IMPORT_UPLOADS_PER_USER",
        1,
        ge=1,
        le=32,
        doc="one user's uploads being read or waiting; past it, a 429 (so one user's burst never holds every"
        " parser nor queues in front of another user's upload)",
    )
    warm_up: bool = env(
        "IMPORT_WARM_UP",
        True,
        doc="start the upload parsers' forkserver (it imports the readers: seconds of CPU) in the"
        " background at start, so that the first upload is quick",
    )


class JobSettings(SettingsGroup):
    title = "Job runtime"

    backend: Literal["memory", "redis"] = env(
        "JOB_BACKEND",
        "memory",
        doc="where jobs run: `memory`, in the API process; `redis`, in `salesflow worker` processes",
    )
    worker_concurrency: int = env(
        "JOB_WORKER_CONCURRENCY", 2, ge=1, le=64, doc="jobs a worker runs at once, per queue it takes"
    )
    worker_queues: Annotated[list[JobQueue], NoDecode] = env(
        "JOB_WORKER_QUEUES",
        default_factory=lambda: list(JobQueue),
        min_length=1,
        doc="the queues a worker takes, each with its own receiver and slots: `interactive` (report"
        " jobs, alert checks), `batch` (the demand batch's chunks)",
    )
    sweep_seconds: float = env(
        "JOB_SWEEP_SECONDS",
        30.0,
        gt=0,
        doc="how often jobs of dead workers are handed back and old files and records removed",
    )
    lease_seconds: float = env(
        "JOB_LEASE_SECONDS",
        20.0,
        gt=0,
        doc="a running job's lease, renewed every third of it while the job runs (a heartbeat); a dead"
        " worker's job is taken again once it lapses and the sweep passes",
    )
    shutdown_grace_seconds: float = env(
        "JOB_SHUTDOWN_GRACE_SECONDS",
        30.0,
        ge=0,
        doc="on SIGTERM, running jobs get this long to finish; then they are handed back (queued again"
        " at once)",
    )

    _queues = field_validator("worker_queues", mode="before")(_split_csv)


class ReportSettings(SettingsGroup):
    title = "Reports and schedules"

    export_dir: Path = env("EXPORT_DIR", Path("var/exports"), doc="generated report files")
    job_timeout_seconds: float = env(
        "REPORT_JOB_TIMEOUT_SECONDS", 600.0, gt=0, doc="the longest one attempt may run"
    )
    max_attempts: int = env("REPORT_MAX_ATTEMPTS", 3, ge=1, le=10, doc="attempts before a job fails")
    jobs_per_user: int = env(
        "REPORT_JOBS_PER_USER",
        5,
        ge=1,
        le=1000,
        doc="report jobs one user may have queued or generating at once; one more is a 429 with `Retry-After`"
        " (scheduled runs are not counted)",
    )
    retention_days: int = env("REPORT_RETENTION_DAYS", 30, ge=1, doc="report files are kept this long")
    wait_seconds: float = env(
        "REPORT_WAIT_SECONDS", 120.0, gt=0, doc="how long `POST /reports/generate` waits for its file"
    )
    scheduler_enabled: bool = env(
        "SCHEDULER_ENABLED",
        True,
        doc="this process fires report schedules and the alert checks (several may: each slot runs once)",
    )
    schedule_sync_seconds: float = env(
        "SCHEDULE_SYNC_SECONDS",
        30.0,
        gt=0,
        doc="how soon schedule changes made by another process apply here",
    )
    schedule_grace_seconds: float = env(
        "SCHEDULE_GRACE_SECONDS", 3600.0, ge=0, doc="how late a slot missed while down still runs"
    )


class MailSettings(SettingsGroup):
    title = "E-mail"

    smtp_host: str | None = env(
        "SMTP_HOST", None, doc="SMTP server; unset: e-mails are written to `OUTBOX_DIR` as `.eml` files"
    )
    smtp_port: int = env("SMTP_PORT", 587, ge=1, le=65535, doc="its port")
    smtp_username: str | None = env("SMTP_USERNAME", None, doc="its user name")
    smtp_password: SecretStr | None = env("SMTP_PASSWORD", None, doc="its password")
    smtp_starttls: bool = env("SMTP_STARTTLS", True, doc="upgrade the connection with STARTTLS")
    smtp_use_tls: bool = env("SMTP_USE_TLS", False, doc="connect over TLS from the start")
    smtp_timeout_seconds: float = env("SMTP_TIMEOUT_SECONDS", 10.0, gt=0, doc="SMTP timeout")
    sender: str = env("MAIL_FROM", "salesflow@localhost", doc="sender of every e-mail")
    admin_email: str | None = env(
        "ADMIN_EMAIL",
        None,
        pattern=r"^[!-~]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
        doc="told, with the schedule's recipients, when a scheduled report fails (one e-mail per failed run,"
        " with the reason)",
    )
    outbox_dir: Path = env("OUTBOX_DIR", Path("var/outbox"), doc="where unsent mail is written")
    delivery_seconds: float = env(
        "MAIL_DELIVERY_SECONDS", 15.0, gt=0, doc="how often the mail outbox is sent"
    )


class ShopSettings(SettingsGroup):
    title = "The shop's calendar and money"

    business_tz: str = env("BUSINESS_TZ", "UTC", doc="IANA zone in which business days are cut")
    country: str | None = env(
        "SHOP_COUNTRY",
        None,
        doc="ISO code for public holidays (`holidays` package, e.g. `GB`, `FR`, `US`): expected quiet days",
    )
    subdivision: str | None = env("SHOP_SUBDIVISION", None, doc="a region of the country, e.g. `ENG`, `BY`")
    currency: str | None = env(
        "SHOP_CURRENCY",
        None,
        doc="ISO 4217 code of the money in e-mails, alert messages and reports (an unknown code stops the"
        " start); unset: `SHOP_COUNTRY`'s",
    )
    closed_dates: CommaList = env(
        "SHOP_CLOSED_DATES",
        default_factory=list,
        doc="planned closures: days or `a..b` ranges, comma-separated (`2026-12-24..2027-01-02`)",
    )
    closed_weekdays: CommaList = env(
        "SHOP_CLOSED_WEEKDAYS", default_factory=list, doc="weekly closing days (`sun`, `sat,sun`)"
    )

    _lists = field_validator("closed_dates", "closed_weekdays", mode="before")(_split_csv)

    @field_validator("business_tz")
    @classmethod
    def _known_business_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        import holidays

        code = value.strip().upper()
        if code not in holidays.list_supported_countries():
            raise ValueError(
                f"no public holidays known for country {value!r} (an ISO code such as GB, FR, US)"
            )
        return code

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str | None) -> str | None:
        return known_currency(value) if value and value.strip() else None

    @field_validator("closed_dates")
    @classmethod
    def _dates_or_ranges(cls, value: list[str]) -> list[str]:
        for item in value:
            closed_days(item)  # raises on a bad date or range
        return value

    @field_validator("closed_weekdays")
    @classmethod
    def _weekday_names(cls, value: list[str]) -> list[str]:
        names = [day.strip().lower()[:3] for day in value]
        for original, name in zip(value, names, strict=True):
            if name not in WEEKDAY_CODES:
                raise ValueError(f"unknown weekday {original!r}; one of: {', '.join(WEEKDAY_CODES)}")
        return names

    @property
    def formats(self) -> Formats:
        """How numbers are written for people: money in `SHOP_CURRENCY`, else in `SHOP_COUNTRY`'s."""
        return Formats(currency=self.currency or currency_of(self.country))

    @property
    def closure_days(self) -> list[date]:
        return [day for item in self.closed_dates for day in closed_days(item)]


class AnomalySettings(SettingsGroup):
    title = "Anomalies"

    min_change: float = env(
        "ANOMALY_MIN_CHANGE",
        0.3,
        ge=0,
        le=10,
        doc="a flagged bucket also differs from its expected value by this share…",
    )
    min_units: float = env(
        "ANOMALY_MIN_UNITS", 5.0, ge=0, doc="…and by this many units per bucket (quantities)"
    )
    min_revenue: float = env(
        "ANOMALY_MIN_REVENUE", 50.0, ge=0, doc="…or this much money per bucket (revenue)"
    )
    min_history_days: int = env(
        "ANOMALY_MIN_HISTORY_DAYS",
        56,
        ge=21,
        doc="a product's own series gets anomaly alerts once it has this much history",
    )


class AlertSettings(SettingsGroup):
    title = "Alerts"

    check_cron: str = env(
        "ALERT_CHECK_CRON",
        "*/15 * * * *",
        doc="when the alert rules are evaluated (crontab, in `BUSINESS_TZ`; also at start-up)",
    )
    anomaly_days: int = env(
        "ALERT_ANOMALY_DAYS", 7, ge=1, le=60, doc="sales anomalies of the last N complete days"
    )
    anomaly_min_share: float = env(
        "ALERT_ANOMALY_MIN_SHARE",
        1.0,
        ge=0,
        le=100,
        doc="a product's sales anomaly is an alert when its revenue gap is this % of an average day's"
        " revenue",
    )
    recipients: CommaList = env(
        "ALERT_RECIPIENTS",
        default_factory=list,
        doc="comma-separated recipients of the alert e-mails; none: alerts are kept and listed, not e-mailed",
    )
    digest_hour: int | None = env(
        "ALERT_DIGEST_HOUR",
        None,
        ge=0,
        le=23,
        doc="one morning digest at this hour (`BUSINESS_TZ`) with everything not yet mailed, `high` alerts at"
        " once; unset: every evaluation mails what opened or worsened",
    )
    email_min_severity: Annotated[dict[AlertKind, Severity], NoDecode] = env(
        "ALERT_EMAIL_MIN_SEVERITY",
        default_factory=dict,
        doc="per kind, the lowest severity e-mailed: `DEAD_STOCK=high,LOW_STOCK=medium`; unset: every"
        " severity",
    )

    _lists = field_validator("recipients", mode="before")(_split_csv)

    @field_validator("email_min_severity", mode="before")
    @classmethod
    def _parse_min_severity(cls, value: object) -> object:
        """`DEAD_STOCK=high,SALES_ANOMALY=medium` (or a JSON object)."""
        if not isinstance(value, str):
            return value
        if value.strip().startswith("{"):
            return json.loads(value)
        pairs = [item.split("=", 1) for item in split_list(value)]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("expected KIND=severity pairs separated by commas")
        return {kind.strip().upper(): severity.strip().lower() for kind, severity in pairs}

    @field_validator("check_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(value)  # raises ValueError naming the bad field
        return value


def _is_group(annotation: object) -> TypeGuard[type[SettingsGroup]]:
    return isinstance(annotation, type) and issubclass(annotation, SettingsGroup)


@functools.cache
def _group_of(kind: type[BaseSettings]) -> dict[str, str | None]:
    """Each environment name (lower case) of `kind`'s settings → its group's field (None: top level)."""
    found: dict[str, str | None] = {}
    for name, field in kind.model_fields.items():
        group = field.annotation
        if _is_group(group):
            found |= {str(leaf.alias): name for leaf in group.model_fields.values()}
        else:
            found[str(field.alias or name)] = None
    return found


class _ByEnvironmentName(PydanticBaseSettingsSource):
    """Every setting, grouped or not, by its flat environment name, from the environment or `.env`."""

    def __init__(self, source: EnvSettingsSource) -> None:
        super().__init__(source.settings_cls)
        self.source = source

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: `__call__` reads every name at once

    def __call__(self) -> dict[str, Any]:
        names = _group_of(self.settings_cls)
        return {name: value for name, value in self.source.env_vars.items() if name in names}


class StoreSettings(BaseSettings):
    """What the embedded store and its demo data need, alone: `salesflow seed-demo` runs on these, without
    the credentials that serving requires."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = env(
        "LOG_LEVEL", "INFO", doc="`DEBUG`, `INFO`, `WARNING`, `ERROR`"
    )
    source: SourceSettings = Field(default_factory=SourceSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        return (init_settings, _ByEnvironmentName(env_settings), _ByEnvironmentName(dotenv_settings))

    @model_validator(mode="before")
    @classmethod
    def _grouped(cls, data: Any) -> Any:
        """Flat names (`java_timeout_seconds=5`, from the environment or a caller) into their groups."""
        if not isinstance(data, dict):
            return data
        where = _group_of(cls)
        grouped: dict[str, Any] = {}
        flat: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            group = where.get(key.lower())
            if group is None:
                grouped[key] = value
            else:
                flat.setdefault(group, {})[key.lower()] = value
        for group, values in flat.items():
            given = grouped.get(group, {})
            given = given.model_dump(by_alias=True) if isinstance(given, BaseModel) else given
            grouped[group] = values | given  # a group given whole wins over a flat name
        return grouped

    def flat(self) -> dict[str, Any]:
        """Every setting by its environment name (lower case)."""
        values: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SettingsGroup):
                values |= value.model_dump(by_alias=True)
            else:
                values[str(field.alias or name)] = value
        return values

    def value(self, name: str) -> Any:
        """One setting by its environment name."""
        return self.flat()[name.lower()]

    def replaced(self, **values: Any) -> Self:
        """A copy with settings replaced by environment name (lower case), validated again."""
        return self.model_validate(self.flat() | values)


class Settings(StoreSettings):
    """Every setting of the service; see the README's settings table."""

    dev_mode: bool = env(
        "DEV_MODE", False, doc="demo data and no authentication; `make run` sets it to `true`"
    )
    app_env: AppEnv = env(
        "APP_ENV",
        "development",
        doc="`development`, `test`, `staging` or `production`; `production` refuses `DEV_MODE=true`",
    )
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    java: JavaSettings = Field(default_factory=JavaSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    sales: SalesSettings = Field(default_factory=SalesSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    forecasting: ForecastingSettings = Field(default_factory=ForecastingSettings)
    imports: ImportSettings = Field(default_factory=ImportSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    shop: ShopSettings = Field(default_factory=ShopSettings)
    anomalies: AnomalySettings = Field(default_factory=AnomalySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @model_validator(mode="after")
    def _refuse_unsafe_combinations(self) -> Self:
        if self.dev_mode and self.app_env == "production":
            raise ValueError("DEV_MODE=true is refused when APP_ENV=production (authentication would be off)")
        secret = self.java.jwt_secret_bytes
        if secret is not None and len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"JAVA_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (got {len(secret)})")
        token = self.metrics.token
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"METRICS_TOKEN must be at least {MIN_TOKEN_CHARS} characters (a guessable one is none)"
            )
        if self.dev_mode:
            return self
        if secret is None:
            raise ValueError("JAVA_JWT_SECRET is required when DEV_MODE is false")
        if self.uses_java and not (self.java.has_service_login or self.java.system_token):
            raise ValueError(
                "PROD mode needs a way to call Java: set JAVA_SERVICE_PHONE and JAVA_SERVICE_PASSWORD,"
                " or SYSTEM_JWT_TOKEN"
            )
        return self

    @property
    def shows_docs(self) -> bool:
        """The OpenAPI pages (`/docs`, `/redoc`, `/openapi.json`): DOCS_ENABLED, else DEV mode only."""
        return self.dev_mode if self.http.docs_enabled is None else self.http.docs_enabled

    @property
    def uses_java(self) -> bool:
        """Whether the Java adapter is the data source."""
        if self.source.kind == "auto":
            return not self.dev_mode
        return self.source.kind == "java"


def sections() -> list[tuple[str, dict[str, FieldInfo]]]:
    """Every setting by environment name, in the README's sections: the top-level ones, then each group."""
    top = {str(field.alias).upper(): field for field in Settings.model_fields.values() if field.alias}
    found = [("Modes", top)]
    for field in Settings.model_fields.values():
        group = field.annotation
        if _is_group(group):
            found.append(
                (group.title, {str(leaf.alias).upper(): leaf for leaf in group.model_fields.values()})
            )
    return found


class ConfigurationError(Exception):
    """Settings cannot be built; the message is one line per problem and holds no secret."""


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into a secret-free `ConfigurationError`."""
    return load(Settings, **overrides)


S = TypeVar("S", bound="StoreSettings")


def load(kind: type[S], **overrides: object) -> S:
    """Settings of `kind` (all, or the store's alone); errors as a secret-free `ConfigurationError`."""
    try:
        return kind(**overrides)  # type: ignore[arg-type]  # overrides are checked by pydantic
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the setting but never echoing the input (it may be a secret)."""
    groups = {name for name, field in Settings.model_fields.items() if _is_group(field.annotation)}
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"] if part not in groups).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}" if name else message)
    return "; ".join(lines)


@functools.cache
def get_settings() -> Settings:
    """The process's settings; only the CLI and the app/worker entry points call this."""
    return load_settings()
