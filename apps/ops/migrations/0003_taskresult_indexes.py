"""Indexes for the results admin's filters and ordering on django-celery-results' table.

That table belongs to another app, so its indexes cannot be model `Meta.indexes` here;
plain SQL that both SQLite and PostgreSQL accept. The admin orders by -date_done, -id,
so every index ends with (date_done, id): a filtered page is an index range read.
Not CONCURRENTLY (it cannot run in a migration's transaction): on a large table, build
them by hand first with CREATE INDEX CONCURRENTLY and the same names; this is then a no-op.
"""

from django.db import migrations

TABLE = "django_celery_results_taskresult"
INDEXES = {
    "ops_result_done": "date_done, id",
    "ops_result_status_done": "status, date_done, id",
    "ops_result_task_done": "task_name, date_done, id",
    "ops_result_schedule_done": "periodic_task_name, date_done, id",
    "ops_result_worker_done": "worker, date_done, id",
}
# Prefix search (task_name LIKE 'x%') needs pattern ops unless the collation is C.
POSTGRES_ONLY = {"ops_result_task_prefix": "task_name varchar_pattern_ops"}


def _indexes(vendor: str) -> dict[str, str]:
    return {**INDEXES, **(POSTGRES_ONLY if vendor == "postgresql" else {})}


def create(apps, schema_editor):
    for name, columns in _indexes(schema_editor.connection.vendor).items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({columns})")


def drop(apps, schema_editor):
    for name in _indexes(schema_editor.connection.vendor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0002_incidents"),
        ("django_celery_results", "0014_alter_taskresult_status"),
    ]
    operations = [migrations.RunPython(create, drop)]
