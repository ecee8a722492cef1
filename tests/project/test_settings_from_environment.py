"""project/settings.py refuses a bad value when it loads, naming the variable, rather than
let it fail later on every request, or in a traceback from the process that uses it."""

import pytest

from tests.deploy.test_settings import manage

pytestmark = pytest.mark.once  # fresh processes with their own settings: no database


def refused(result) -> str:
    """The last line a `manage.py` that would not start printed: its reason."""
    assert result.returncode != 0, result.stdout + result.stderr
    return result.stderr.strip().splitlines()[-1]


def printed(result) -> str:
    """The last line a `manage.py shell -c` that ran printed (the shell's notes come first)."""
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("value", ["notanip", "10.0.0.0/99"])
def test_metrics_allowed_ips_that_are_no_address_or_network_stop_start_up(tmp_path, value):
    """They loaded, then every /metrics request answered 500."""
    line = refused(manage(tmp_path, "check", METRICS_ALLOWED_IPS=f"127.0.0.1,{value}"))
    assert line == (
        f"django.core.exceptions.ImproperlyConfigured: METRICS_ALLOWED_IPS: {value!r} "
        "does not appear to be an IPv4 or IPv6 network"
    )


@pytest.mark.parametrize("name", ["EMBEDDED_REDIS_PORT", "EMAIL_PORT"])
def test_a_port_above_65535_stops_start_up(tmp_path, name):
    """EMBEDDED_REDIS_PORT=70000 ended in an OverflowError traceback from devstack."""
    line = refused(manage(tmp_path, "check", **{name: "70000"}))
    assert line.endswith(f"ImproperlyConfigured: {name}=70000: must be at most 65535")


def test_an_unknown_log_level_stops_start_up_naming_the_levels(tmp_path):
    line = refused(manage(tmp_path, "check", LOG_LEVEL="LOUD"))
    assert line.endswith(
        "ImproperlyConfigured: LOG_LEVEL='LOUD': expected CRITICAL, FATAL, ERROR, WARN, "
        "WARNING, INFO, DEBUG or NOTSET (any case)"
    )


def test_a_log_level_in_lower_case_is_read_in_upper_case(tmp_path):
    """`debug` ended in "ValueError: Unable to configure root logger"."""
    code = "import logging; print(logging.getLevelName(logging.getLogger().level))"
    result = manage(tmp_path, "shell", "-c", code, LOG_LEVEL="debug")
    assert printed(result) == "DEBUG"


@pytest.mark.parametrize("zone", ["Nowhere/Bogus", "Europe", "../etc/passwd"])
def test_a_time_zone_zoneinfo_does_not_know_stops_start_up(tmp_path, zone):
    line = refused(manage(tmp_path, "check", TIME_ZONE=zone))
    assert line.endswith(
        f"ImproperlyConfigured: TIME_ZONE={zone!r}: not a time zone name "
        "(such as UTC or Europe/Paris)"
    )


def test_a_time_zone_zoneinfo_knows_is_taken(tmp_path):
    code = "from django.conf import settings; print(settings.TIME_ZONE, settings.CELERY_TIMEZONE)"
    result = manage(tmp_path, "shell", "-c", code, TIME_ZONE="Europe/Paris")
    assert printed(result) == "Europe/Paris Europe/Paris"


@pytest.mark.parametrize(
    "entry",
    [
        "http://intranet.example.com",
        "intranet:8080",
        "intranet.example.com/health",
        "10.0.0.300",
        "[::1]",
        "intra net",
    ],
)
def test_an_http_check_allowed_host_with_a_scheme_port_or_path_stops_start_up(tmp_path, entry):
    """Each was taken for a host name that no URL ever has: the entry silently did nothing."""
    result = manage(tmp_path, "check", HTTP_CHECK_ALLOWED_HOSTS=f"localhost,{entry}")
    assert refused(result).endswith(
        f"ImproperlyConfigured: HTTP_CHECK_ALLOWED_HOSTS: {entry!r} is not a host name, an IP "
        "address or a network (no scheme, port or path: intranet.example.com, 10.0.0.5, "
        "10.0.0.0/8)"
    )


def test_an_http_check_allowed_network_that_is_no_network_stops_start_up(tmp_path):
    result = manage(tmp_path, "check", HTTP_CHECK_ALLOWED_HOSTS="10.0.0.0/99")
    assert refused(result).endswith(
        "ImproperlyConfigured: HTTP_CHECK_ALLOWED_HOSTS: '10.0.0.0/99' does not appear to be "
        "an IPv4 or IPv6 network"
    )


def test_http_check_allowed_hosts_are_read_as_names_addresses_and_networks(tmp_path):
    code = "from django.conf import settings; print(settings.HTTP_CHECK_ALLOWED_HOSTS)"
    allowed = "Intranet.Example.com.,redis_1,10.0.0.5,10.0.0.0/8,fd00::/8"
    result = manage(tmp_path, "shell", "-c", code, HTTP_CHECK_ALLOWED_HOSTS=allowed)
    assert printed(result) == (
        "['intranet.example.com', 'redis_1', IPv4Network('10.0.0.5/32'), "
        "IPv4Network('10.0.0.0/8'), IPv6Network('fd00::/8')]"
    )


@pytest.mark.parametrize(
    ("name", "most"),
    [("CELERY_TASK_TIME_LIMIT", 31536000), ("CELERY_TASK_SOFT_TIME_LIMIT", 31536000),
     ("CELERY_VISIBILITY_TIMEOUT", 31536600), ("BEAT_LEASE_SECONDS", 3600)],
)  # fmt: skip
def test_a_duration_past_its_bound_stops_start_up(tmp_path, name, most):
    line = refused(manage(tmp_path, "check", **{name: str(10**20)}))
    assert line.endswith(f"ImproperlyConfigured: {name}={10**20}: must be at most {most}")
