"""`manage.py check` warns when the jobs sweeper could send a run beat is still sending."""

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.once


def check_output() -> str:
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    return out.getvalue()


def test_the_default_settings_give_beats_flush_time_before_the_sweeper_sends():
    assert "scheduling.W001" not in check_output()


def test_a_sweeper_wait_no_longer_than_beats_longest_flush_is_warned_about(settings):
    settings.SWEEP_PENDING_AFTER_SECONDS = 7  # 2 s to connect + 5 s for the reply
    out = check_output()
    assert "scheduling.W001" in out and "SWEEP_PENDING_AFTER_SECONDS (7)" in out
