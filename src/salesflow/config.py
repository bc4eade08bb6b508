"""Typed settings, read once from the environment and `.env`.

Only this module touches `os.environ`. Everything else receives a `Settings` instance (or just the fields it
needs) from the composition root (`resources.py`), the CLI or the API dependencies.
"""

from __future__ import annotations

import functools
import json
from datetime import date, timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from salesflow.formatting import Formats, currency_of, known_currency
from salesflow.models.alerts import AlertKind, Severity
from salesflow.models.jobs import JobQueue
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
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CLOSURE_DAYS = 366

AppEnv = Literal["development", "test", "staging", "production"]
DataSourceKind = Literal["auto", "embedded", "java"]


def split_list(text: str) -> list[str]:
    """`a, b` or a JSON list."""
    text = text.strip()
    if text.startswith("["):
        return [str(item) for item in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def closed_days(item: str) -> list[date]:
    """`2026-12-24` or the range `2026-12-24..2027-01-02` (both ends included)."""
    first, _, last = item.strip().partition("..")
    start = date.fromisoformat(first.strip())
    end = date.fromisoformat(last.strip()) if last else start
    if not 0 <= (end - start).days < MAX_CLOSURE_DAYS:
        raise ValueError(f"closed range {item!r} must run forwards and span at most {MAX_CLOSURE_DAYS} days")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


class StoreSettings(BaseSettings):
    """What the embedded store and its demo data need, alone: `salesflow seed-demo` runs on these, without
    the credentials that serving requires."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    java_timezone: str = "UTC"  # Java writes naive local timestamps
    data_dir: Path = Path("var/data")
    demo_products: int = Field(default=300, ge=10)
    demo_days: int = Field(default=730, ge=30)
    demo_seed: int = 42

    @field_validator("java_timezone")
    @classmethod
    def _known_java_zone(cls, value: str) -> str:
        return known_zone(value)

    @property
    def embedded_db_path(self) -> Path:
        return self.data_dir / "salesflow.duckdb"


class Settings(StoreSettings):
    """Every setting of the service; see the README's settings table."""

    # Modes
    dev_mode: bool = False
    app_env: AppEnv = "development"

    # HTTP server
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # a request's headers; then closed
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: [*DEFAULT_CORS_ORIGINS])
    request_body_max_bytes: int = Field(default=1024 * 1024, ge=1024)  # uploads: IMPORT_MAX_BYTES
    request_header_max_bytes: int = Field(default=16 * 1024, ge=1024)
    # Proxies whose X-Forwarded-For names the client (for the per-client limit); empty: the TCP peer is it.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(default_factory=list)
    # Operations: `GET /metrics` (open in DEV; in PROD METRICS_TOKEN as a bearer token, or an ADMIN JWT), the
    # OpenAPI pages (default: DEV only), a worker's own metrics port (0: none).
    # Rate limits a minute (0: off): failed authentications per client address, expensive requests per user.
    rate_limit_auth_failures: int = Field(default=30, ge=0)
    rate_limit_expensive: int = Field(default=120, ge=0)
    # DEV only: a Java-compatible demo API on 127.0.0.1 from the demo store, for the frontend (0: off).
    dev_java_port: int = Field(default=8080, ge=0, le=65535)
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    docs_enabled: bool | None = None
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    # Java system of record and its tokens
    data_source: DataSourceKind = "auto"
    java_api_url: str = "http://127.0.0.1:8080/api/v1"
    java_jwt_secret: SecretStr | None = None
    jwt_issuer: str = "salesflow-app"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    java_service_phone: str | None = None
    java_service_password: SecretStr | None = None
    system_jwt_token: SecretStr | None = None
    java_timeout_seconds: float = Field(default=30.0, gt=0)
    java_read_retries: int = Field(default=2, ge=0, le=5)
    java_deadline_seconds: float = Field(default=20.0, gt=0)  # one call in all, retries included
    java_circuit_failures: int = Field(default=3, ge=1)  # failed calls in a row that open the circuit
    java_circuit_open_seconds: float = Field(default=10.0, gt=0)  # then calls fail at once, until a probe

    # Business days are cut in BUSINESS_TZ (JAVA_TIMEZONE: see StoreSettings).
    business_tz: str = "UTC"

    # Storage
    redis_url: str | None = None
    export_dir: Path = Path("var/exports")

    # Cache
    cache_ttl_analytics_seconds: int = Field(default=300, ge=1)
    cache_ttl_ml_seconds: int = Field(default=3600, ge=1)
    cache_memory_max_entries: int = Field(default=2048, ge=16)
    cache_redis_retry_seconds: float = Field(default=5.0, gt=0)

    # Analytics
    label_language: Literal["en", "fr"] = "en"
    analytics_max_window_days: int = Field(default=366, ge=1)
    dead_stock_days: int = Field(default=90, ge=1)
    demand_window_days: int = Field(default=28, ge=1)
    reorder_lead_days: int = Field(default=7, ge=1)
    review_period_days: int = Field(default=14, ge=0)
    service_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    demand_forecasts: bool = True  # reorder points from the daily batch of forecasts once it has run
    demand_forecast_workers: int = Field(default=1, ge=1, le=16)
    demand_chunk_products: int = Field(default=100, ge=1)  # products per batch job (JOB_BACKEND=redis)
    # The batch's forecasts are scored once their days are known (GET /ml/accuracy); kept this long.
    forecast_accuracy_days: int = Field(default=91, ge=14, le=730)
    forecast_warm_up: bool = True  # compile the models at start so that the first forecast is quick
    import_warm_up: bool = True  # start the upload parsers' forkserver at start: the first upload is quick

    # Columnar cache of sale lines (read by every pipeline)
    sales_history_days: int = Field(default=400, ge=30)
    sales_max_history_days: int = Field(default=800, ge=30)  # older windows extend the cache up to this
    sales_refresh_seconds: float = Field(default=15.0, ge=0)
    sales_refresh_wait_seconds: float = Field(default=1.0, ge=0)  # then answer from the last known data
    sales_full_reload_seconds: float = Field(default=3600.0, gt=0)

    # Excel import
    import_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    import_max_rows: int = Field(default=200_000, ge=1)
    import_batch_sales: int = Field(default=100, ge=1, le=10_000)
    # Each upload is read in a disposable process with these limits (memory: on top of what it starts with).
    import_parser_memory_mb: int = Field(default=1024, ge=64)
    import_parser_cpu_seconds: int = Field(default=60, ge=1)
    import_parser_wall_seconds: float = Field(default=90.0, gt=0)
    import_parsers: int = Field(default=2, ge=1, le=32)
    import_uploads_waiting: int = Field(default=4, ge=0, le=1000)  # for a parser; past it, a 429
    import_uploads_per_user: int = Field(default=1, ge=1, le=32)  # being read or waiting; past it, a 429

    # Durable state and the job runtime
    state_database_url: str | None = None  # default: sqlite+aiosqlite under DATA_DIR
    job_backend: Literal["memory", "redis"] = "memory"
    job_worker_concurrency: int = Field(default=2, ge=1, le=64)  # jobs a worker runs at once, per queue
    job_worker_queues: Annotated[list[JobQueue], NoDecode] = Field(
        default_factory=lambda: list(JobQueue), min_length=1
    )  # the queues a `salesflow worker` takes: interactive (reports, alert checks), batch (demand chunks)
    job_sweep_seconds: float = Field(default=30.0, gt=0)  # requeue jobs of dead workers; remove old files
    report_job_timeout_seconds: float = Field(default=600.0, gt=0)  # one attempt's longest run
    job_lease_seconds: float = Field(default=20.0, gt=0)  # renewed while a job runs; a dead worker's lapses
    job_shutdown_grace_seconds: float = Field(default=30.0, ge=0)  # running jobs finish; then handed back
    report_max_attempts: int = Field(default=3, ge=1, le=10)
    report_jobs_per_user: int = Field(default=5, ge=1, le=1000)  # one user's unfinished jobs; more is a 429
    report_retention_days: int = Field(default=30, ge=1)
    state_retention_days: int = Field(default=90, ge=1)  # sent mail, alert checks, resolved alerts
    report_wait_seconds: float = Field(default=120.0, gt=0)  # POST /reports/generate waits this long
    scheduler_enabled: bool = True  # this process fires report schedules (several may: each slot runs once)
    schedule_sync_seconds: float = Field(default=30.0, gt=0)
    schedule_grace_seconds: float = Field(default=3600.0, ge=0)  # a slot missed while down still runs
    mail_delivery_seconds: float = Field(default=15.0, gt=0)  # how often the outbox is sent

    # E-mail alerts (used by the alerting pipeline)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "salesflow@localhost"
    alert_recipients: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Told when a scheduled report fails (with the schedule's recipients): whoever can fix the cause.
    admin_email: str | None = Field(default=None, pattern=r"^[!-~]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
    outbox_dir: Path = Path("var/outbox")

    # Anomalies and alerts: a flagged bucket is also this far from its expected value (a share, and units or
    # money per bucket); the shop's calendar makes its holidays and closures expected.
    anomaly_min_change: float = Field(default=0.3, ge=0, le=10)
    anomaly_min_units: float = Field(default=5.0, ge=0)
    anomaly_min_revenue: float = Field(default=50.0, ge=0)
    anomaly_min_history_days: int = Field(default=56, ge=21)  # a product's own series is judged from then on
    shop_country: str | None = None  # ISO code for public holidays (`holidays` package), e.g. GB, FR, US
    shop_subdivision: str | None = None  # a region of the country, e.g. SCT, BY, CA
    shop_currency: str | None = None  # ISO 4217 code for money in e-mails and reports; default: the country's
    shop_closed_dates: Annotated[list[str], NoDecode] = Field(default_factory=list)  # days or `a..b` ranges
    shop_closed_weekdays: Annotated[list[str], NoDecode] = Field(default_factory=list)  # e.g. `sun`
    alert_check_cron: str = "*/15 * * * *"  # in BUSINESS_TZ; and once at start-up
    alert_anomaly_days: int = Field(default=7, ge=1, le=60)  # sales anomalies of the last N complete days
    # a product's sales anomaly is an alert when its revenue gap is this % of an average day's revenue
    alert_anomaly_min_share: float = Field(default=1.0, ge=0, le=100)
    alert_digest_hour: int | None = Field(default=None, ge=0, le=23)  # one morning digest (+ high at once)
    alert_email_min_severity: Annotated[dict[AlertKind, Severity], NoDecode] = Field(default_factory=dict)

    @field_validator(
        "cors_origins",
        "alert_recipients",
        "shop_closed_dates",
        "shop_closed_weekdays",
        "trusted_proxies",
        "job_worker_queues",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        """Accept `a,b` as well as a JSON list in the environment."""
        return split_list(value) if isinstance(value, str) else value

    @field_validator("alert_email_min_severity", mode="before")
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

    @field_validator("shop_country")
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

    @field_validator("shop_currency")
    @classmethod
    def _known_currency(cls, value: str | None) -> str | None:
        return known_currency(value) if value and value.strip() else None

    @field_validator("shop_closed_dates")
    @classmethod
    def _dates_or_ranges(cls, value: list[str]) -> list[str]:
        for item in value:
            closed_days(item)  # raises on a bad date or range
        return value

    @field_validator("shop_closed_weekdays")
    @classmethod
    def _weekday_names(cls, value: list[str]) -> list[str]:
        names = [day.strip().lower()[:3] for day in value]
        for original, name in zip(value, names, strict=True):
            if name not in WEEKDAYS:
                raise ValueError(f"unknown weekday {original!r}; one of: {', '.join(WEEKDAYS)}")
        return names

    @field_validator("alert_check_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(value)  # raises ValueError naming the bad field
        return value

    @field_validator("business_tz")
    @classmethod
    def _known_business_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("java_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_combinations(self) -> Self:
        if self.dev_mode and self.app_env == "production":
            raise ValueError("DEV_MODE=true is refused when APP_ENV=production (authentication would be off)")
        secret = self.java_jwt_secret_bytes
        if secret is not None and len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"JAVA_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (got {len(secret)})")
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"METRICS_TOKEN must be at least {MIN_TOKEN_CHARS} characters (a guessable one is none)"
            )
        if self.dev_mode:
            return self
        if secret is None:
            raise ValueError("JAVA_JWT_SECRET is required when DEV_MODE is false")
        if self.uses_java and not (self.has_service_login or self.system_jwt_token):
            raise ValueError(
                "PROD mode needs a way to call Java: set JAVA_SERVICE_PHONE and JAVA_SERVICE_PASSWORD,"
                " or SYSTEM_JWT_TOKEN"
            )
        return self

    @property
    def shows_docs(self) -> bool:
        """The OpenAPI pages (`/docs`, `/redoc`, `/openapi.json`): DOCS_ENABLED, else DEV mode only."""
        return self.dev_mode if self.docs_enabled is None else self.docs_enabled

    @property
    def formats(self) -> Formats:
        """How numbers are written for people: money in `SHOP_CURRENCY`, else in `SHOP_COUNTRY`'s."""
        return Formats(currency=self.shop_currency or currency_of(self.shop_country))

    @property
    def closed_dates(self) -> list[date]:
        return [day for item in self.shop_closed_dates for day in closed_days(item)]

    @property
    def java_jwt_secret_bytes(self) -> bytes | None:
        """The HMAC key exactly as Java uses it: the raw UTF-8 bytes, never trimmed."""
        if self.java_jwt_secret is None:
            return None
        return self.java_jwt_secret.get_secret_value().encode("utf-8")

    @property
    def uses_java(self) -> bool:
        """Whether the Java adapter is the data source."""
        if self.data_source == "auto":
            return not self.dev_mode
        return self.data_source == "java"

    @property
    def has_service_login(self) -> bool:
        return bool(self.java_service_phone and self.java_service_password)

    @property
    def java_root_url(self) -> str:
        """Java's base URL without `/api/v1` (its actuator lives there)."""
        url = self.java_api_url
        return url[: -len("/api/v1")] if url.endswith("/api/v1") else url


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
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}" if name else message)
    return "; ".join(lines)


@functools.cache
def get_settings() -> Settings:
    """The process's settings; only the CLI and the app/worker entry points call this."""
    return load_settings()
