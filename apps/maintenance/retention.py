"""Delete old run records and stored results, a batch at a time.

Each batch selects at most `batch_size` primary keys through an index and deletes by
those keys in its own short transaction: memory stays flat whatever the table size,
and no lock is held for longer than one batch.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import FINISHED_STATES, Run, Source

log = logging.getLogger(__name__)

# The bounds of a prune, for the job's parameter and `manage.py prune_runs` alike.
MAX_AGE_DAYS = 3650  # ten years: "older than" anything further is a mistake, or overflows
MAX_BATCH_SIZE = 10_000  # primary keys per DELETE ... WHERE pk IN (...)


def default_age() -> timedelta:
    return timedelta(days=settings.RESULT_RETENTION_DAYS)


def prune_runs(
    older_than: timedelta | None = None,
    *,
    dry_run: bool = False,
    batch_size: int = 5000,
    user=None,
) -> dict[str, int]:
    """Delete finished runs queued, and results done, before now - older_than: those
    `user` may see (Run.objects.visible_to) and their results, or all with no user.
    Steps of a pipeline still running, and their results, are kept: its last step
    waits for every earlier step's stored result.

    Returns {"runs": n, "results": n, "batches": n} (what would go, with dry_run).
    """
    cutoff = timezone.now() - (older_than or default_age())
    runs, results = _prunable(cutoff, user)
    if dry_run:
        return {"runs": runs.count(), "results": results.count(), "batches": 0}
    # Results first: with a user they are found through the runs they belong to.
    deleted_results, result_batches = delete_in_batches(results, batch_size)
    deleted_runs, run_batches = delete_in_batches(runs, batch_size)
    log.info("pruned %d runs and %d results older than %s", deleted_runs, deleted_results, cutoff)
    return {"runs": deleted_runs, "results": deleted_results,
            "batches": run_batches + result_batches}  # fmt: skip


def _prunable(cutoff, user) -> tuple[QuerySet, QuerySet]:
    """The runs and the results old enough to go, as `user` sees them (None: all)."""
    visible = Run.objects.visible_to(user) if user is not None else Run.objects.all()
    in_running_pipeline = Q(pipeline__isnull=False) & ~Q(pipeline__state__in=FINISHED_STATES)
    runs = visible.filter(queued_at__lt=cutoff, state__in=FINISHED_STATES).exclude(
        in_running_pipeline
    )
    results = TaskResult.objects.filter(date_done__lt=cutoff).exclude(
        task_id__in=Run.objects.filter(in_running_pipeline).values("task_id")
    )
    if user is not None:
        results = results.filter(task_id__in=visible.values("task_id"))
    return runs, results


def prune_as_run(task_id: str, older_than: timedelta) -> dict[str, int]:
    """The body of the job `prune_runs`: like the bulk job (apps.jobs.bulk.run_as_job),
    it acts as the person who started it, pruning only the runs they may see; a run
    no person started (the retention schedule, the CLI, a shell) prunes everything."""
    own = Run.objects.select_related("requested_by").get(task_id=task_id)
    if own.requested_by is None and own.source in (Source.WEB, Source.API, Source.ADMIN):
        raise PermissionError("the person who started this prune no longer exists")
    return prune_runs(older_than, user=own.requested_by)


def delete_in_batches(queryset: QuerySet, batch_size: int) -> tuple[int, int]:
    """Delete every row of the queryset, batch_size at a time; (rows, batches)."""
    model = queryset.model
    deleted = batches = 0
    while True:
        pks = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted, batches
        with transaction.atomic():
            _, per_model = model.objects.filter(pk__in=pks).delete()
        deleted += per_model.get(model._meta.label, 0)
        batches += 1
