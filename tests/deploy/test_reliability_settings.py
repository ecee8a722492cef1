"""The lost-worker threshold and the RabbitMQ queue type, as settings read them."""

import pytest

from .test_settings import manage

pytestmark = pytest.mark.once


@pytest.mark.parametrize("value", ["-1", "10000000000000", "soon"])
def test_a_lost_worker_threshold_out_of_bounds_is_refused_when_settings_load(tmp_path, value):
    result = manage(tmp_path, "check", WORKER_LOST_AFTER_SECONDS=value)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: WORKER_LOST_AFTER_SECONDS={value}" in result.stderr.replace(
        f"'{value}'", value
    )


def test_an_unknown_queue_type_is_refused_when_settings_load(tmp_path):
    result = manage(tmp_path, "check", CELERY_TASK_DEFAULT_QUEUE_TYPE="stream")
    assert result.returncode != 0
    assert "CELERY_TASK_DEFAULT_QUEUE_TYPE='stream': expected classic or quorum" in result.stderr


def test_quorum_queues_come_with_topic_exchanges_and_no_global_qos(tmp_path):
    code = ("from project import celery_app as a; c = a.conf; print(c.task_default_queue_type, "
            "c.task_create_missing_queue_type, c.task_default_exchange_type, "
            "c.worker_detect_quorum_queues, a.amqp.queues['celery'].queue_arguments)")  # fmt: skip
    result = manage(
        tmp_path, "shell", "-v", "0", "-c", code, CELERY_TASK_DEFAULT_QUEUE_TYPE="quorum"
    )
    assert result.returncode == 0, result.stderr
    expected = ["quorum", "quorum", "topic", "True", "{'x-queue-type':", "'quorum'}"]
    assert result.stdout.splitlines()[-1].split() == expected
