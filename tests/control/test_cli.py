"""`manage.py queues|workers|ratelimits`: the actions from a shell; status 2 on bad input."""

import subprocess

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditEntry
from apps.control import broker
from apps.control.models import ControlAction, QueuePause, RateLimit
from apps.devstack.processes import PYTHON
from apps.jobs.cli import os_user

from .helpers import ADD, send_adds

# Nothing here depends on the database's vendor: the SQLite pass is enough.
pytestmark = [pytest.mark.django_db, pytest.mark.once]


def refused(*args) -> CommandError:
    with pytest.raises(CommandError) as error:
        call_command(*args)
    return error.value


def test_pause_and_resume_are_stored_and_recorded_as_cli(test_queue, capsys):
    call_command("queues", "pause", test_queue)
    assert QueuePause.objects.filter(queue=test_queue).exists()
    call_command("queues", "list")
    assert f"{test_queue}\tPAUSED" in capsys.readouterr().out
    call_command("queues", "resume", test_queue)
    assert not QueuePause.objects.exists()
    assert set(ControlAction.objects.values_list("via", flat=True)) == {"cli"}


def test_a_pause_from_the_shell_is_in_the_audit_log_with_its_door_and_who(test_queue):
    call_command("queues", "pause", test_queue)

    entry = AuditEntry.objects.get(additional_data__action="pause_queue")
    assert (entry.via, entry.object_pk, entry.actor_label) == ("cli", test_queue, os_user())


@pytest.mark.django_db(transaction=True)
def test_purge_without_yes_only_counts_and_with_yes_drops(test_queue, capsys):
    send_adds(test_queue, 2)

    error = refused("queues", "purge", test_queue)

    assert error.returncode == 1
    assert f"2 messages waiting in {test_queue} would be dropped" in str(error)
    assert broker.waiting(test_queue) == 2
    call_command("queues", "purge", test_queue, "--yes")
    assert "2 messages dropped, 2 runs cancelled" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ("queues", "pause", "nope"),
        ("queues", "purge", "nope", "--yes"),
        ("ratelimits", "set", ADD, "10/d"),
        ("ratelimits", "set", "no.such.job", "10/m"),
        ("workers", "grow", "nobody@nowhere", "1"),
        ("workers", "grow", "nobody@nowhere", "0"),
        ("workers", "autoscale", "nobody@nowhere", "1", "5"),
        ("workers", "shutdown", "nobody@nowhere"),
    ],
)
def test_bad_input_exits_with_status_2(args):
    assert refused(*args).returncode == 2
    assert not ControlAction.objects.exists()


def test_a_rate_limit_is_set_and_cleared(capsys):
    call_command("ratelimits", "set", ADD, "10/m")
    assert RateLimit.objects.get(job_name=ADD).rate == "10/m"
    assert "10/m per worker" in capsys.readouterr().out
    call_command("ratelimits", "clear", ADD)
    assert not RateLimit.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_from_a_shell_bad_input_is_one_line_on_stderr_and_status_2(subprocess_env):
    done = subprocess.run(
        [PYTHON, "manage.py", "ratelimits", "set", ADD, "ten a minute"],
        env=subprocess_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ratelimits: error: 'ten a minute' is not a rate limit; write it like 10/m (per s, m or h)"
    ]


@pytest.mark.parametrize("digits", ["\u0663", "\uff13", "1_0"])  # Arabic-Indic 3, fullwidth 3
def test_a_pool_size_in_digits_other_than_0_to_9_is_refused_with_status_2(digits):
    for args in [("grow", "w@h", digits), ("shrink", "w@h", digits),
                 ("autoscale", "w@h", digits, "1")]:  # fmt: skip
        error = refused("workers", *args)
        assert error.returncode == 2
        assert "is not a whole number (digits 0-9)" in str(error)
    assert not ControlAction.objects.exists()
