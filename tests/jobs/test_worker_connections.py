"""Workers keep their database connections between tasks and recover when they break."""

import pytest
from celery import shared_task
from django.db import connection, transaction
from django_celery_results.models import TaskResult

from apps.demo.tasks import add
from apps.jobs.models import Run, State
from tests.helpers import make_run, wait_for

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL connections (SQLite has no server)"
)


@shared_task(name="tests.jobs.database_backend_pid")
def database_backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def backend_pids(count: int) -> set[int]:
    return {database_backend_pid.delay().get(timeout=10, interval=0.02) for _ in range(count)}


@pytest.mark.django_db
def test_an_eager_task_inside_a_transaction_leaves_the_connection_alone():
    with transaction.atomic():
        run = make_run()
        assert add.apply((1, 2)).get() == 3
        assert connection.in_atomic_block
        run.refresh_from_db()
    assert Run.objects.filter(pk=run.pk).exists()


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_the_worker_reuses_its_connections_between_tasks(celery_worker):
    # Four worker threads, so at most four connections; the stock fixup opens one a task.
    assert len(backend_pids(12)) <= 4


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_the_worker_reconnects_after_postgresql_drops_its_connections(celery_worker):
    backend_pids(4)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    sent = add.delay(2, 3)
    assert sent.get(timeout=10, interval=0.02) == 5
    assert TaskResult.objects.get(task_id=sent.id).status == "SUCCESS"
    run = Run.objects.get(task_id=sent.id)
    assert wait_for(lambda: Run.objects.get(pk=run.pk).state == State.SUCCEEDED)
