"""project/celery_settings.py: Celery reads the project's settings from a dict."""

import pytest
from django.conf import Settings, settings

from project import celery_app

pytestmark = pytest.mark.once


def test_every_celery_setting_of_the_project_reaches_celery():
    names = [name for name in dir(settings) if name.startswith("CELERY_")]
    assert len(names) > 20
    assert {name: celery_app.conf.get(name) for name in names} == {
        name: getattr(settings, name) for name in names
    }
    conf = celery_app.conf
    assert (conf.task_track_started, conf.result_extended, conf.worker_prefetch_multiplier) == (
        True, True, 1,
    )  # fmt: skip


def test_a_setting_left_at_celerys_default_is_found_without_asking_djangos_settings(
    monkeypatch,
):
    """Issue 15: each name Django's settings object lacks raised an AttributeError, and
    Celery asks under several names: 15-25 us a setting, seven of them in every
    `.delay()`."""
    asked = []
    attribute = Settings.__getattribute__

    def spy(self, name):
        asked.append(name)
        return attribute(self, name)

    monkeypatch.setattr(Settings, "__getattribute__", spy)
    assert celery_app.conf.task_always_eager is False
    assert celery_app.conf.task_default_queue == "celery"
    assert asked == []
