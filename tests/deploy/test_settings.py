"""project/settings.py under a production environment, in a fresh process each time."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = ROOT / "project" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
READS = [
    r'env_(?:str|bool|int|list|choice|time_zone)\(\s*"([A-Z][A-Z0-9_]*)"',
    r'os\.environ(?:\.get)?[\[(]\s*"([A-Z][A-Z0-9_]*)"',
    r'"([A-Z][A-Z0-9_]*)"\s+(?:not\s+)?in\s+os\.environ',
]


def settings_variables() -> set[str]:
    source = SETTINGS_FILE.read_text()
    return {name for pattern in READS for name in re.findall(pattern, source)}


def production_env(tmp_path, **env: str | None) -> dict[str, str]:
    """A production environment (no Switchyard variable but these) changed by `env`
    (None unsets)."""
    # DJANGO_ALLOW_ASYNC_UNSAFE is set by the browser tests in this process only, and
    # DJANGO_SETTINGS_MODULE by pytest-django: a container has neither.
    unset = {*settings_variables(), "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    production = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    return {k: v for k, v in {**clean, **production, **env}.items() if v is not None}


def manage(tmp_path, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run manage.py in a production environment changed by `env` (None unsets)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(tmp_path, **env),
        capture_output=True,
        text=True,
    )


def test_check_deploy_passes_with_a_production_environment(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_fails_without_a_secret_key(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=None)
    assert result.returncode != 0
    assert "switchyard.E001" in result.stderr


def test_debug_yes_is_refused_when_settings_load(tmp_path):
    result = manage(tmp_path, "check", DEBUG="yes")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG='yes'" in result.stderr


def test_a_non_numeric_email_port_is_refused_when_settings_load(tmp_path):
    result = manage(tmp_path, "check", EMAIL_PORT="abc")
    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_PORT='abc'" in result.stderr


@pytest.mark.parametrize("days", ["1000000000000", "3651"])
def test_a_retention_beyond_ten_years_is_refused_when_settings_load(tmp_path, days):
    """It became timedelta(days=...) at import: an OverflowError traceback in every process."""
    result = manage(tmp_path, "check", RESULT_RETENTION_DAYS=days)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: RESULT_RETENTION_DAYS={days}: must be at most 3650" in (
        result.stderr
    )


DURATIONS = [
    "ALERT_MIN_INTERVAL_MINUTES",
    "STUCK_QUEUED_AFTER_SECONDS",
    "EXPORT_EXPIRY_HOURS",
    "SWEEP_LOST_AFTER_SECONDS",
    "SWEEP_PENDING_AFTER_SECONDS",
    "BEAT_HEARTBEAT_MAX_AGE",
]


@pytest.mark.parametrize("name", DURATIONS)
def test_a_duration_setting_beyond_a_year_is_refused_when_settings_load(tmp_path, name):
    """10^13 loaded, then overflowed on use: the alert sweep failed every time, the
    dashboard and the sweeper answered 500, expired exports were never removed."""
    result = manage(tmp_path, "check", **{name: "10000000000000"})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}=10000000000000: must be at most" in result.stderr


def test_env_example_lists_every_variable_settings_reads():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert settings_variables() - listed == set()


def test_a_sentinel_broker_without_the_primarys_name_is_refused_when_settings_load(tmp_path):
    sentinels = "sentinel://sentinel-1:26379;sentinel://sentinel-2:26379"
    result = manage(tmp_path, "check", CELERY_BROKER_URL=sentinels)
    assert result.returncode != 0
    assert "ImproperlyConfigured: A sentinel:// URL needs REDIS_SENTINEL_MASTER" in result.stderr
    named = manage(tmp_path, "check", CELERY_BROKER_URL=sentinels, REDIS_SENTINEL_MASTER="main")
    assert named.returncode == 0, named.stderr
