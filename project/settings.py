"""Switchyard settings: the only module that reads the environment.

Every knob has a default that runs on a laptop (SQLite, an embedded Redis under var/).
Production sets SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and CELERY_BROKER_URL; see
.env.example for every variable.
"""

import ipaddress
import logging
import os
import re
import zoneinfo
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# A checkout's own files: the SQLite database, the embedded Redis's data, backups,
# exports. Not in git, so a fresh clone has none: the SQLite database's folder is made
# below, where its path is set; Redis (apps.devstack.processes), backups and exports
# make theirs before writing.
VAR_DIR = BASE_DIR / "var"

_TRUE = {"1", "true", "on"}
_FALSE = {"0", "false", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of true/false/1/0/on/off")


# The longest duration a setting may hold: beyond it, time arithmetic overflows (a 500 on
# the dashboard, an alert sweep that fails every time) long before anyone notices.
YEAR_S = 365 * 24 * 3600


def env_int(name: str, default: int, minimum: int | None = None,
            maximum: int | None = None) -> int:  # fmt: skip
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value}: must be at most {maximum}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_choice(name: str, default: str, choices: list[str], upper: bool = False) -> str:
    """One of `choices` (empty or unset: `default`); `upper`: any case, read in upper case."""
    raw = env_str(name).strip() or default
    value = raw.upper() if upper else raw
    if value not in choices:
        expected = f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise ImproperlyConfigured(
            f"{name}={raw!r}: expected {expected}{' (any case)' if upper else ''}"
        )
    return value


def env_time_zone(name: str, default: str) -> str:
    """A zone name zoneinfo knows, such as UTC or Europe/Paris (empty or unset: `default`)."""
    value = env_str(name).strip() or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ImproperlyConfigured(
            f"{name}={value!r}: not a time zone name (such as UTC or Europe/Paris)"
        ) from None
    return value


# What the port-number settings may hold.
PORT_MAX = 65535

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A host name as an allow-list may hold it: dot-separated labels of letters, digits, "-"
# and "_" (docker-compose service names), an optional final dot; no scheme, port or path.
_HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?", re.I)


def ip_networks(name: str, entries: list[str]) -> list[IPNetwork]:
    """Addresses and networks (of env_list) as networks: an address is a /32 or /128."""
    return [_ip_network(name, entry) for entry in entries]


def _ip_network(name: str, entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def hosts_and_networks(name: str, entries: list[str]) -> list[str | IPNetwork]:
    """Host names (lower case, no final dot), addresses and networks (of env_list)."""
    return [_host_or_network(name, entry) for entry in entries]


def _host_or_network(name: str, entry: str) -> str | IPNetwork:
    address, slash, _ = entry.partition("/")
    if slash and _is_address(address):
        return _ip_network(name, entry)  # 10.0.0.0/99: ipaddress says what is wrong
    if _is_address(entry):
        return ipaddress.ip_network(entry)
    # A name whose last label is a number is a mistyped address (10.0.0.300, 127.1).
    if not _HOST_NAME.fullmatch(entry) or entry.rstrip(".").rpartition(".")[2].isdigit():
        raise ImproperlyConfigured(
            f"{name}: {entry!r} is not a host name, an IP address or a network "
            "(no scheme, port or path: intranet.example.com, 10.0.0.5, 10.0.0.0/8)"
        )
    return entry.lower().rstrip(".")


def make_parent_folder(database_file: str) -> None:
    """Make the folder an SQLite database file goes in (var/ in a fresh clone)."""
    if database_file and database_file != ":memory:":
        Path(database_file).parent.mkdir(parents=True, exist_ok=True)


def command_patterns(name: str, entries: list[str]) -> dict[str, tuple[str, ...]]:
    """`command[:pattern pattern ...]` entries (of env_list): management commands and, for
    each, the shell-style patterns its arguments must match (none listed: no arguments)."""
    commands: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        command, _, patterns = entry.partition(":")
        command = command.strip()
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", command):
            raise ImproperlyConfigured(f"{name}: {command!r} is not a command name")
        commands[command] = tuple(patterns.split())
    return commands


# Core ---------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
# The fallback key keeps a fresh checkout, `manage.py` and the tests working; the deploy
# check switchyard.E001 refuses it, and with DEBUG off project.wsgi / project.asgi
# refuse to serve with it (project.checks), so production must set SECRET_KEY.
DEV_SECRET_KEY = "django-insecure-switchyard-development-key-do-not-deploy"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY") or DEV_SECRET_KEY
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_celery_results",
    "django_htmx",
    "django_tasks",
    "auditlog",
    "project.apps.ProjectConfig",
    "apps.devstack",
    "apps.jobs",
    "apps.api",
    "apps.scheduling",
    "apps.ops",
    "apps.maintenance",
    "apps.checks",
    "apps.reports",
    "apps.djtasks",
    "apps.audit",
    "apps.control",
    "apps.pipelines",
]
# The demo jobs (apps.demo: Celery's walkthrough task `add` and its two periodic tasks,
# countdown, flaky; apps.demo.tasks_api: Django Tasks API examples). On by default, for
# a laptop; docker-compose's .env.example turns them off, so a production beat does not
# get the walkthrough's schedules.
DEMO_JOBS = env_bool("DEMO_JOBS", True)
if DEMO_JOBS:
    INSTALLED_APPS += ["apps.demo", "apps.demo.tasks_api"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.context.AuditMiddleware",  # who changed what, from where (apps/audit)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.ops.middleware.RefuseNulInQueryMiddleware",  # PostgreSQL text cannot hold NUL
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database -----------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'switchyard.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that costs no round trip (its docstring).
    _db["ENGINE"] = "project.postgresql"
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file. Measured (STACK-NOTES): WAL + IMMEDIATE +
    # a 20 s busy timeout gave zero "database is locked" errors under load.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # The test database must be a file: the in-process worker uses other connections.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-switchyard.sqlite3")}
    make_parent_folder(_db["NAME"])
    make_parent_folder(_db["TEST"]["NAME"])
DATABASES = {"default": _db}
# run_unhandled_failures covers its columns on PostgreSQL; SQLite keeps only its keys.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Auth, i18n, static -------------------------------------------------------------------

# Django's ModelBackend, with a user's permissions read in one statement (issue 15).
# Sessions signed in under django.contrib.auth.backends.ModelBackend sign in once again.
AUTHENTICATION_BACKENDS = ["apps.jobs.permissions.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The site's sign-in page (project/urls.py), for any active user; staff pages
# (staff_member_required) still send people to the admin's own login.
LOGIN_URL = "login"
# Not the dashboard: it is for staff, and the catalog is every signed-in user's page.
LOGIN_REDIRECT_URL = "jobs:catalog"
# Both or neither; the password must pass AUTH_PASSWORD_VALIDATORS (manage.py ensure_admin).
ADMIN_USER = env_str("ADMIN_USER")
ADMIN_PASSWORD = env_str("ADMIN_PASSWORD")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The site layout's stylesheet (templates/switchyard/base.html); apps keep their own in
# apps/<app>/static/.
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# Built-in jobs (apps.maintenance, apps.reports) ----------------------------------------

# Where apps.maintenance.tasks.backup_database writes; staff download them in the admin.
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(VAR_DIR / "backups")))
# Management commands apps.maintenance.tasks.run_command may run, each with the patterns
# its arguments must match (see command_patterns; docs/writing-jobs.md lists the commands
# that are refused even if listed).
RUN_COMMAND_ALLOWLIST = command_patterns(
    "RUN_COMMAND_ALLOWLIST",
    env_list(
        "RUN_COMMAND_ALLOWLIST",
        "check:--deploy --fail-level=* --tag=*,clearsessions,showmigrations:--list --plan [a-z]*",
    ),
)
# Hosts (names, addresses or networks such as 10.0.0.0/8) apps.checks.tasks.http_check
# may reach although they are internal (loopback, private, link-local...): host names in
# lower case and ipaddress networks (an address is a /32 or /128).
HTTP_CHECK_ALLOWED_HOSTS = hosts_and_networks(
    "HTTP_CHECK_ALLOWED_HOSTS", env_list("HTTP_CHECK_ALLOWED_HOSTS")
)
# Hours a CSV export stays downloadable before it is deleted.
EXPORT_EXPIRY_HOURS = env_int("EXPORT_EXPIRY_HOURS", 24, 1, YEAR_S // 3600)

# Security -----------------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# /healthz and /readyz are probed over plain HTTP inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# Email --------------------------------------------------------------------------------

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, 1, PORT_MAX)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "switchyard@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [(address, address) for address in env_list("ADMINS")]

# Celery -------------------------------------------------------------------------------

# With CELERY_BROKER_URL unset, everything talks to the embedded Redis that `make run`
# (manage.py devstack) starts on this fixed loopback port, data under var/redis/.
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6388, 1, PORT_MAX)
EMBEDDED_REDIS_DIR = Path(env_str("EMBEDDED_REDIS_DIR", str(VAR_DIR / "redis")))
EMBEDDED_REDIS = "CELERY_BROKER_URL" not in os.environ
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Late-acked jobs stay invisible this long on Redis before redelivery; longer than
# the hard time limit, so a slow job is not handed out twice.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800, 1, YEAR_S)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1500, 1, YEAR_S)
# Seconds before Redis hands a dead worker's unacknowledged (late-ack) messages to
# another worker. Shorter brings them back sooner, but a job still running (or waiting
# in a worker's prefetch) after this long is handed out twice; the chaos tests shorten it.
CELERY_VISIBILITY_TIMEOUT = env_int(
    "CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 600, 1, YEAR_S + 600
)
_RESTORE_EVERY = max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 10))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Workers look for such messages every this many seconds (kombu's default: 100).
    "unacked_restore_interval": _RESTORE_EVERY,
    "unacked_restore_throttle": 1,
    # One worker at a time looks, under a lock that expires after this long. A worker
    # killed while it held the lock would stop every restore for kombu's default, 300 s;
    # restoring is a WATCHed transaction per message, so an overlap is harmless.
    "unacked_mutex_expire": 5 * _RESTORE_EVERY,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
# Redis Sentinel: CELERY_BROKER_URL lists the Sentinels, kombu's way
# ("sentinel://s1:26379;sentinel://s2:26379;sentinel://s3:26379"), and this names the
# primary they watch. Workers, beat and web find the new primary after a failover by
# themselves, and so do Switchyard's own Redis clients (the beat lease, the overlap
# locks: apps.scheduling.lease). Results are in the database, not in Redis.
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER")
if REDIS_SENTINEL_MASTER:
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
elif "sentinel://" in CELERY_BROKER_URL + env_str("SCHEDULING_REDIS_URL"):
    raise ImproperlyConfigured(
        "A sentinel:// URL needs REDIS_SENTINEL_MASTER: the name of the primary the "
        "Sentinels watch (`sentinel monitor NAME ...`)"
    )
# A dispatch while the broker is down fails fast (about a second) instead of hanging a
# request; the run stays "waiting to be sent" and the sweeper sends it later.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.25,
    "interval_max": 0.5,
}
SWEEP_PENDING_AFTER_SECONDS = env_int("SWEEP_PENDING_AFTER_SECONDS", 10, 0, YEAR_S)
# A late-acked run never delivered this long, whose message Redis no longer holds, is
# sent again by the sweeper (a worker killed as it took the message loses it).
SWEEP_LOST_AFTER_SECONDS = env_int("SWEEP_LOST_AFTER_SECONDS", 60, 1, YEAR_S)
STUCK_QUEUED_AFTER_SECONDS = env_int("STUCK_QUEUED_AFTER_SECONDS", 600, 1, YEAR_S)
# On PostgreSQL, a run record written `queued` (web, API, CLI, `.delay()`, bulk starts)
# commits without waiting for its WAL flush (synchronous_commit off for that one
# transaction; PostgreSQL flushes it within about 0.6 s): an enqueue no longer waits on
# the disk. A publish that fails still leaves the run on disk, since setting it back
# to `pending_send` commits synchronously and flushes the WAL before it. What it trades:
# a database crash in that 0.6 s loses the records of runs already handed to the broker
# (their jobs still run). Off by default. docs/reliability.md, "Enqueue without the flush".
RUN_RECORDS_ASYNC_COMMIT = env_bool("RUN_RECORDS_ASYNC_COMMIT", False)
# A worker holding started runs that answered no ping for this long is lost: the sweeper
# (every 30 s) sends its idempotent runs again and fails the others, and the dashboard
# shows it as lost. More than the sweep's 30 s, so one missed ping is not enough; 0: off.
WORKER_LOST_AFTER_SECONDS = env_int("WORKER_LOST_AFTER_SECONDS", 45, 0, YEAR_S)
# django-celery-results' tables and admin; each state stored with one upsert
# (apps.jobs.worker.backend).
CELERY_RESULT_BACKEND = "apps.jobs.worker.backend:SwitchyardBackend"
# Celery's Django fixup would close the database connections around every task; out of
# reach here, so workers reuse them under Django's CONN_MAX_AGE / CONN_HEALTH_CHECKS
# rules instead (apps.jobs.worker.connections).
CELERY_DB_REUSE_MAX = 2**62
CELERY_RESULT_EXTENDED = True
# While the database is unreachable (a restart, a failover), storing a state or result
# is retried on a new connection (apps.jobs.worker.backend) for up to about three minutes,
# instead of failing the job and losing its result.
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 20
CELERY_RESULT_BACKEND_BASE_SLEEP_BETWEEN_RETRIES_MS = 200
CELERY_RESULT_BACKEND_MAX_SLEEP_BETWEEN_RETRIES_MS = 10_000
CELERY_TASK_TRACK_STARTED = True
# A worker killed after a late-acked job succeeded but before the ack leaves a message
# the broker delivers again: skip it before "started" is stored over "succeeded".
CELERY_WORKER_DEDUPLICATE_SUCCESSFUL_TASKS = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# On RabbitMQ, "quorum" declares the task queues as quorum queues: replicated over the
# cluster's nodes, they keep every message while a majority of nodes is up (classic
# queues live on one node). Celery then sets no global QoS, which quorum queues refuse
# (CELERY_WORKER_DETECT_QUORUM_QUEUES), and sends countdown/ETA tasks through its native
# delayed delivery, which needs topic exchanges. Quorum queues (RabbitMQ 3.x) ignore
# message priorities. A queue keeps the type it was declared with: switch on an empty
# virtual host. Redis ignores the setting. See docs/reliability.md.
CELERY_TASK_DEFAULT_QUEUE_TYPE = env_choice(
    "CELERY_TASK_DEFAULT_QUEUE_TYPE", "classic", ["classic", "quorum"]
)
CELERY_WORKER_DETECT_QUORUM_QUEUES = True
if CELERY_TASK_DEFAULT_QUEUE_TYPE == "quorum":
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"  # the queues jobs name (queue=...)
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    # Without publisher confirms a message published while the queue elects a new leader
    # (a node lost) is dropped unseen: measured, 146 of 200 runs sent in those seconds
    # (tests/reliability/test_rabbitmq_quorum.py). With them a publish the broker did not
    # take fails, and the run waits to be sent again (the sweeper sends it).
    CELERY_BROKER_TRANSPORT_OPTIONS["confirm_publish"] = True
# Celery's task events (task-sent from every sender; received, started, succeeded... from
# workers) are for monitors such as Flower. Switchyard reads none of them: its run records
# say the same. Off (Celery's default), a trigger reaches its task sooner and a worker
# spends less per task (docs/performance.md); Flower turns worker events on by itself
# while it runs.
CELERY_TASK_EVENTS = env_bool("CELERY_TASK_EVENTS", False)
CELERY_WORKER_SEND_TASK_EVENTS = CELERY_TASK_EVENTS
CELERY_TASK_SEND_SENT_EVENT = CELERY_TASK_EVENTS
# django-celery-beat's DatabaseScheduler (same tables and admin), made to keep up with
# tens of thousands of schedules and safe to run in two or more beat processes.
CELERY_BEAT_SCHEDULER = "apps.scheduling.schedulers:SwitchyardScheduler"
# Where the beat leader lease and the overlap locks live (apps.scheduling). Empty: the
# broker's, if the broker is Redis; with no Redis at all, run exactly one beat.
SCHEDULING_REDIS_URL = env_str("SCHEDULING_REDIS_URL")
# Seconds a beat's leader lease lives unless renewed; a standby beat takes over within
# about 1.4 times this after the leader dies.
BEAT_LEASE_SECONDS = env_int("BEAT_LEASE_SECONDS", 15, 2, 3600)
# Whether beat sends Celery's task-sent event for every run (CELERY_TASK_SEND_SENT_EVENT
# still holds for every other sender). Off: the run record already says when each run
# was sent, and the event costs a quarter of beat's CPU at scale (docs/performance.md).
BEAT_TASK_SENT_EVENTS = env_bool("BEAT_TASK_SENT_EVENTS", False)
# At most ten years, as a prune's age (apps.maintenance.retention.MAX_AGE_DAYS).
RESULT_RETENTION_DAYS = env_int("RESULT_RETENTION_DAYS", 30, 1, 3650)
# Celery's built-in celery.backend_cleanup (run daily by beat) deletes results older
# than this from django-celery-results.
CELERY_RESULT_EXPIRES = timedelta(days=RESULT_RETENTION_DAYS)
DJANGO_CELERY_BEAT_TZ_AWARE = True

# Django's Tasks API (the django-tasks backport; django.tasks on Django 6): every `@task`
# runs on Celery through Switchyard's dispatch (apps.djtasks). QUEUES are the queue names
# a task may ask for; "default" is Celery's default queue, any other the Celery queue of
# that name (a worker must consume it: celery worker -Q celery,NAME).
TASKS = {
    "default": {
        "BACKEND": "apps.djtasks.backend.CeleryBackend",
        "QUEUES": env_list("TASKS_QUEUES", "default"),
    }
}

# Operations (apps.ops): dashboard, /readyz, /metrics, alerts ---------------------------

# /metrics answers a request with "Authorization: Bearer <METRICS_TOKEN>" or from one of
# METRICS_ALLOWED_IPS (addresses or networks, held as ipaddress networks); everything
# else is refused.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_IPS = ip_networks(
    "METRICS_ALLOWED_IPS", env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
)
# At most one alert email per incident in this many minutes; repeats only count up.
ALERT_MIN_INTERVAL_MINUTES = env_int("ALERT_MIN_INTERVAL_MINUTES", 60, 1, YEAR_S // 60)
# Beat is "down" (an alert, /readyz fails) when its heartbeat is older than this (s).
BEAT_HEARTBEAT_MAX_AGE = env_int("BEAT_HEARTBEAT_MAX_AGE", 120, 1, YEAR_S)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {
        "handlers": ["console"],
        # Any case (debug, Info); logging itself takes only upper-case names.
        "level": env_choice("LOG_LEVEL", "INFO", list(logging.getLevelNamesMapping()), upper=True),
    },
}

# Audit log (apps/audit): django-auditlog writes every change to schedules, API tokens
# and permissions into one table of ours, which also says where it came from (`via`).
AUDITLOG_LOGENTRY_MODEL = "audit.AuditEntry"
AUDITLOG_USE_FK_STRING_REPRESENTATION = True  # "every 2 hours", not "interval 7"
