"""Settings: safe defaults and one clear line for each misconfiguration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from salesflow.config import ConfigurationError, Settings, load_settings, sections
from salesflow.models.jobs import JobQueue

SECRET = "5Yz8Q9wXJ2cU7aLm4RkT1bNf9PqS8zL3KxV7Nh9WsD4Ef2RgH1Jk8LpM Esau"


def settings(**values: object):
    return load_settings(_env_file=None, **values)


def test_dev_mode_is_off_by_default_and_then_a_secret_is_required() -> None:
    with pytest.raises(ConfigurationError, match="JAVA_JWT_SECRET is required when DEV_MODE is false"):
        settings(java_service_phone="1", java_service_password="p")


def test_short_secret_is_refused_with_its_length_but_not_its_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(dev_mode=True, java_jwt_secret="too-short-secret")
    assert "at least 32 bytes (got 16)" in str(caught.value)
    assert "too-short-secret" not in str(caught.value)


def test_dev_mode_is_refused_in_production() -> None:
    with pytest.raises(ConfigurationError, match="DEV_MODE=true is refused when APP_ENV=production"):
        settings(dev_mode=True, app_env="production")


def test_prod_without_any_way_to_call_java_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="JAVA_SERVICE_PHONE and JAVA_SERVICE_PASSWORD"):
        settings(java_jwt_secret=SECRET)


def test_prod_accepts_a_system_token_or_an_embedded_source() -> None:
    assert settings(java_jwt_secret=SECRET, system_jwt_token="tok").uses_java
    assert not settings(java_jwt_secret=SECRET, data_source="embedded").uses_java


def test_secret_is_used_byte_for_byte_with_spaces_kept() -> None:
    padded = f" {SECRET} "
    loaded = settings(dev_mode=True, java_jwt_secret=padded)
    assert loaded.java.jwt_secret_bytes == padded.encode()
    assert SECRET not in repr(loaded)


def test_lists_come_from_comma_separated_or_json_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://a.test, http://b.test")
    monkeypatch.setenv("ALERT_RECIPIENTS", '["boss@shop.test"]')
    monkeypatch.setenv("JOB_WORKER_QUEUES", "batch")
    loaded = settings(dev_mode=True)
    assert loaded.http.cors_origins == ["http://a.test", "http://b.test"]
    assert loaded.alerts.recipients == ["boss@shop.test"]
    assert loaded.jobs.worker_queues == [JobQueue.BATCH]


@pytest.mark.parametrize("value", ["reports", ""])
def test_a_worker_queue_that_does_not_exist_is_named(value: str) -> None:
    with pytest.raises(ConfigurationError, match="JOB_WORKER_QUEUES"):
        settings(dev_mode=True, job_worker_queues=value)


def test_default_cors_origins_are_the_frontends() -> None:
    origins = settings(dev_mode=True).http.cors_origins
    for port in (5173, 5174, 4173):
        assert f"http://127.0.0.1:{port}" in origins and f"http://localhost:{port}" in origins


def test_a_bad_top_level_setting_is_named_too() -> None:
    with pytest.raises(ConfigurationError, match=r"^APP_ENV: Input should be"):
        settings(dev_mode=True, app_env="moon")


def test_unknown_time_zone_is_named() -> None:
    with pytest.raises(ConfigurationError, match="BUSINESS_TZ: unknown IANA time zone 'Mars/Olympus'"):
        settings(dev_mode=True, business_tz="Mars/Olympus")


def test_env_example_is_written_from_the_settings_and_reads_back_as_the_defaults() -> None:
    from tests.readme_tables import ENV_EXAMPLE, env_example

    assert ENV_EXAMPLE.read_text() == env_example(), "run `.venv/bin/python -m tests.readme_tables`"
    copied = Settings(_env_file=ENV_EXAMPLE, dev_mode=True)
    assert copied.flat() == Settings(_env_file=None, dev_mode=True).flat()


def test_settings_are_grouped_but_keep_their_environment_names() -> None:
    loaded = settings(dev_mode=True, java_timeout_seconds=7, shop_closed_weekdays="Sunday")
    assert loaded.java.timeout_seconds == 7 and loaded.shop.closed_weekdays == ["sun"]
    assert loaded.value("JAVA_TIMEOUT_SECONDS") == 7
    replaced = loaded.replaced(job_lease_seconds=60)
    assert replaced.jobs.lease_seconds == 60 and replaced.java.timeout_seconds == 7
    with pytest.raises(ValidationError):
        loaded.replaced(job_lease_seconds=-1)  # validated again, as at start-up
    names = [name for _, fields in sections() for name in fields]
    assert len(names) == len(set(names)) == len(loaded.flat())


def run_cli(tmp_path: Path, command: str, **env_updates: str) -> subprocess.CompletedProcess[str]:
    """`salesflow COMMAND` in a process of its own, with the environment's service settings replaced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_", "SYSTEM_"))}
    return subprocess.run(
        [sys.executable, "-m", "salesflow.cli", command],
        cwd=tmp_path,
        env=env | env_updates,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_fails_at_start_with_one_line_and_no_secret(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", DEV_MODE="true", APP_ENV="production", JAVA_JWT_SECRET=SECRET)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "salesflow: configuration error: DEV_MODE=true is refused when APP_ENV=production "
        "(authentication would be off)"
    ]
    assert "Esau" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("shop_country", "Atlantis", "no public holidays known for country 'Atlantis'"),
        ("shop_closed_dates", "2026-12-31..2026-12-24", "must run forwards"),
        ("shop_closed_dates", "2026-02-30", "SHOP_CLOSED_DATES"),
        ("shop_closed_weekdays", "funday", "unknown weekday 'funday'"),
        ("alert_check_cron", "*/15 * * *", "ALERT_CHECK_CRON"),
        ("alert_email_min_severity", "DEAD_STOCK=urgent", "ALERT_EMAIL_MIN_SEVERITY"),
        ("alert_email_min_severity", "FIRE=high", "ALERT_EMAIL_MIN_SEVERITY"),
        ("anomaly_min_change", "-1", "ANOMALY_MIN_CHANGE"),
    ],
)
def test_alerting_settings_are_checked_at_start(name: str, value: str, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        settings(dev_mode=True, **{name: value})


def test_alerting_settings_are_read_from_text() -> None:
    read = settings(
        dev_mode=True,
        shop_country="gb",
        shop_closed_dates="2026-12-24..2026-12-26, 2027-01-01",
        shop_closed_weekdays="Sunday,sat",
        alert_email_min_severity="dead_stock=high,LOW_STOCK=medium",
    )
    assert read.shop.country == "GB" and read.shop.closed_weekdays == ["sun", "sat"]
    assert [d.isoformat() for d in read.shop.closure_days] == [
        "2026-12-24",
        "2026-12-25",
        "2026-12-26",
        "2027-01-01",
    ]
    assert read.alerts.email_min_severity == {"DEAD_STOCK": "high", "LOW_STOCK": "medium"}


def test_a_worker_on_the_embedded_store_is_refused_with_one_line(tmp_path: Path) -> None:
    """DEV mode's embedded store is one process's file: a worker beside the server died in a restart loop."""
    result = run_cli(tmp_path, "worker", DEV_MODE="true", DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("salesflow: a worker needs the Java data source") and "Traceback" not in line
