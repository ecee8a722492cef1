"""docker-compose.yml: accepted by both validators, one image per role, health-ordered.

Each role runs the command the tests start it with (apps.devstack.processes), so the
deployment runs what the suite has exercised.
"""

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from apps.devstack import processes
from tests.deploy.test_settings import production_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_ROLES = ["migrate", "web", "worker", "beat", "flower"]
# Roles that need the migrated database and the broker before they start.
RUNTIME_ROLES = ["web", "worker", "beat"]


@pytest.fixture(scope="module")
def services() -> dict:
    return YAML(typ="safe").load(COMPOSE_FILE.read_text())["services"]


@pytest.fixture
def deploy_dir(tmp_path) -> Path:
    """The compose file beside a .env made from .env.example, as a deployment has it."""
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    return tmp_path


def env_example_values() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def without_python_m(command: list[str]) -> list[str]:
    assert command[:2] == [processes.PYTHON, "-m"]
    return command[2:]


def test_compose_file_matches_the_compose_spec_schema():
    check_jsonschema = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_accepts_the_file(deploy_dir):
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's package)")
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
        cwd=deploy_dir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_runs_from_one_image_with_the_env_file(services):
    images = {services[role]["image"] for role in APP_ROLES}
    assert len(images) == 1
    for role in APP_ROLES:
        assert services[role]["build"] == "."
        assert services[role]["env_file"] == ".env"


def test_worker_runs_the_command_the_tests_use(services):
    assert services["worker"]["command"] == without_python_m(processes.worker_command())


def test_beat_runs_the_command_the_tests_use(services):
    assert services["beat"]["command"] == without_python_m(processes.beat_command())


def test_web_serves_the_wsgi_application_with_gunicorn(services, tmp_path):
    command = services["web"]["command"]
    assert command == without_python_m(processes.gunicorn_command("0.0.0.0:8000"))
    module, attribute = command[3].split(":")
    # In a production environment of its own: the application refuses to load without one.
    code = f"import {module}; assert callable({module}.{attribute})"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env=production_env(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_flower_watches_the_same_celery_app(services):
    assert services["flower"]["command"] == ["celery", "-A", "project", "flower", "--port=5555"]
    assert "environment" not in services["flower"]  # same broker: the shared .env


def test_migrate_checks_the_deployment_then_migrates_then_ensures_an_admin(services):
    assert services["migrate"]["command"] == [
        "sh", "-c",
        "python manage.py check --deploy --fail-level WARNING"
        " && python manage.py migrate --noinput && python manage.py ensure_admin",
    ]  # fmt: skip
    assert services["migrate"]["restart"] == "no"


def run_service_command(service: dict, tmp_path, **env: str | None):
    """The service's command, run here as its container would (`python` is this venv's)."""
    env = production_env(tmp_path, **env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(service["command"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def migrated_tables(tmp_path) -> list[str]:
    with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db:
        return [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]


@pytest.mark.once
def test_without_a_secret_key_migrate_fails_the_deploy_check_and_changes_nothing(
    services, tmp_path
):
    result = run_service_command(services["migrate"], tmp_path, SECRET_KEY=None)

    assert result.returncode != 0
    assert "switchyard.E001" in result.stderr
    assert migrated_tables(tmp_path) == []


@pytest.mark.slow
@pytest.mark.once
def test_with_a_production_environment_migrate_passes_the_check_and_migrates(services, tmp_path):
    result = run_service_command(services["migrate"], tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "django_celery_beat_periodictask" in migrated_tables(tmp_path)
    assert "Created superuser 'admin'" in result.stdout


def test_workers_can_be_scaled(services):
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "deploy" not in worker


def test_exactly_one_beat_runs(services):
    beats = [name for name, service in services.items() if "beat" in service.get("command", [])]
    assert beats == ["beat"]
    assert "deploy" not in services["beat"]


def test_runtime_roles_wait_for_healthy_services_and_finished_migrations(services):
    # "finished" = migrate exited 0, which it does only after `check --deploy` passed.
    for role in RUNTIME_ROLES:
        assert services[role]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["flower"]["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_every_awaited_health_condition_has_a_healthcheck(services):
    for service in services.values():
        for name, dependency in service.get("depends_on", {}).items():
            if dependency["condition"] == "service_healthy":
                assert services[name]["healthcheck"]["test"]


def test_no_service_sleeps_to_wait_for_another(services):
    for service in services.values():
        assert "sleep" not in " ".join(service.get("command", []))


def test_database_and_redis_are_probed_by_their_own_clients(services):
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_redis_appends_every_write_to_a_volume(services):
    redis = services["redis"]
    assert redis["command"] == ["redis-server", "--appendonly", "yes"]
    assert redis["volumes"] == ["redis-data:/data"]


def test_env_example_points_django_at_the_compose_db_and_redis():
    values = env_example_values()
    assert values["DATABASE_URL"].startswith("postgres://")
    assert "@db:5432/" in values["DATABASE_URL"]
    assert values["CELERY_BROKER_URL"] == "redis://redis:6379/0"


def test_the_image_copies_every_top_level_folder_the_site_loads():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("project/", "apps/", "templates/", "static/"):
        assert f" {folder} {folder}" in dockerfile, folder
