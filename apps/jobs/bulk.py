"""Act on many runs at once: retry the failed, cancel the queued, discard (mark handled)
the failed, for a whole filtered set; the one path of /runs/, the API and the CLI.

    preview(user, action, filter)            -> how many runs the action would touch
    start(user, action, filter, expected)    -> acts at once (<= INLINE_LIMIT runs), or
                                                starts the job `apps.jobs.tasks.bulk_runs`
    perform(user, action, filter, expected)  -> acts (the job and the CLI call it)

The set is `Run.objects.visible_to(user)` narrowed by the filter (run_filters) and by
the action's target states; it is worked out again when acting, and refused when it
grew beyond the count the person confirmed (`expected`): a changed filter or new runs
can never widen what was confirmed. Each run is then acted on by the one rule for one
run: `permissions.may_run` per job (runs of other jobs are skipped and counted),
`dispatch.rerun` (with its revalidation) to retry, `RunQuerySet.cancel_not_started`
(what `Run.cancel` does) to cancel, `RunQuerySet.mark_handled` to discard. A retried
failure is marked handled first (once, even if two people retry at once), and unmarked
if its parameters are refused.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import models

from .catalog import ParameterError, get_job
from .dispatch import rerun, start_run
from .models import NOT_STARTED, Run, Source
from .permissions import may_run
from .run_filters import RunFilter

INLINE_LIMIT = 500  # more runs than this: the action runs as a job of its own
BATCH_SIZE = 1000
JOB = "apps.jobs.tasks.bulk_runs"


class Action(models.TextChoices):
    RETRY = "retry", "Retry failed runs"
    CANCEL = "cancel", "Cancel queued runs"
    DISCARD = "discard", "Discard failed runs (mark handled)"


VERB = {Action.RETRY: "retried", Action.CANCEL: "cancelled", Action.DISCARD: "discarded"}


class CountGrew(Exception):
    def __init__(self, count: int, expected: int):
        self.count, self.expected = count, expected
        super().__init__(
            f"the set grew to {count} runs since {expected} were confirmed; "
            "review the count and confirm again"
        )


@dataclass
class Outcome:
    action: str
    matched: int = 0  # runs in the set when acting
    done: int = 0  # retried / cancelled / discarded
    not_permitted: int = 0  # runs of jobs the user may not run
    refused: int = 0  # retries whose stored parameters are no longer valid
    changed: int = 0  # finished, started or handled by someone else meanwhile
    run: Run | None = None  # the job acting on a large set
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.run is not None:
            return f"{self.matched} runs: run {self.run.pk} works through them."
        parts = [f"{self.done} of {self.matched} runs {VERB[Action(self.action)]}"]
        if self.not_permitted:
            parts.append(f"{self.not_permitted} skipped (jobs you may not run)")
        if self.refused:
            parts.append(f"{self.refused} not retried (parameters no longer valid)")
        if self.changed:
            parts.append(f"{self.changed} changed meanwhile")
        return "; ".join(parts) + "."

    def as_dict(self) -> dict:
        return {"action": self.action, "matched": self.matched, "done": self.done,
                "not_permitted": self.not_permitted, "refused": self.refused,
                "changed": self.changed, "run": self.run.pk if self.run else None,
                "errors": self.errors[:20]}  # fmt: skip


def target(user, action: str, runs_filter: RunFilter) -> models.QuerySet:
    """The runs `action` would touch: those `user` may see (every run when called
    without a user: the CLI), in the filter, in the action's target states."""
    runs = Run.objects.visible_to(user) if user is not None else Run.objects.all()
    runs = runs_filter.apply(runs)
    if action == Action.CANCEL:
        return runs.filter(state__in=NOT_STARTED)
    return runs.unhandled_failures()


def preview(user, action: str, runs_filter: RunFilter) -> int:
    return target(user, action, runs_filter).count()


def start(user, action: str, runs_filter: RunFilter, expected: int, *, source: Source,
          label: str = "") -> Outcome:  # fmt: skip
    """Act on a small set at once; start the job for a large one (its run returned)."""
    count = preview(user, action, runs_filter)
    if count > expected:
        raise CountGrew(count, expected)
    if count <= INLINE_LIMIT:
        return perform(user, action, runs_filter, expected, source=source, label=label)
    params = {"action": str(action), "query": runs_filter.query(), "expected": expected}
    run = start_run(get_job(JOB), params, source=source, user=user, label=label)
    return Outcome(str(action), matched=count, run=run)


Progress = Callable[[int, int], None]


def perform(user, action: str, runs_filter: RunFilter, expected: int, *, source: Source,
            label: str = "", progress: Progress | None = None) -> Outcome:  # fmt: skip
    """Act on every run of the set, in batches; raises CountGrew first if it grew."""
    ids = list(target(user, action, runs_filter).order_by("pk")
               .values_list("pk", flat=True)[: expected + 1])  # fmt: skip
    if len(ids) > expected:
        raise CountGrew(len(ids), expected)
    outcome = Outcome(str(action), matched=len(ids))
    permitted = Permitted(user)
    for start_at in range(0, len(ids), BATCH_SIZE):
        batch = ids[start_at : start_at + BATCH_SIZE]
        act_on_batch(outcome, user, action, batch, permitted, source=source, label=label)
        if progress:
            progress(start_at + len(batch), len(ids))
    return outcome


class Permitted:
    """may_run per job name, asked once per job (no user: the CLI, may run all)."""

    def __init__(self, user):
        self.user, self.known = user, {}

    def __call__(self, job_name: str) -> bool:
        if self.user is None:
            return True
        if job_name not in self.known:
            self.known[job_name] = may_run(self.user, job_name)
        return self.known[job_name]


def act_on_batch(outcome: Outcome, user, action: str, ids: list[int], permitted: Permitted,
                 *, source: Source, label: str) -> None:  # fmt: skip
    names = dict(Run.objects.filter(pk__in=ids).values_list("pk", "job_name"))
    allowed = [pk for pk, name in names.items() if permitted(name)]
    outcome.not_permitted += len(names) - len(allowed)
    outcome.changed += len(ids) - len(names)  # deleted meanwhile
    if action == Action.RETRY:
        return retry_each(outcome, user, allowed, source=source, label=label)
    runs = Run.objects.filter(pk__in=allowed)
    if action == Action.CANCEL:
        done = runs.filter(state__in=NOT_STARTED).cancel_not_started(user)
    else:
        done = runs.mark_handled(user, label)
    outcome.done += done
    outcome.changed += len(allowed) - done


def retry_each(outcome: Outcome, user, ids: list[int], *, source: Source, label: str) -> None:
    for run in Run.objects.filter(pk__in=ids).order_by("pk"):
        one = Run.objects.filter(pk=run.pk)
        if not one.mark_handled(user, label):
            outcome.changed += 1  # handled (or retried) by someone else meanwhile
            continue
        try:
            rerun(run, source=source, user=user, label=label)
        except ParameterError as error:
            one.update(handled_at=None, handled_by=None, handled_by_label="")
            outcome.refused += 1
            outcome.errors.append(f"run {run.pk}: {error.one_line()}")
            continue
        outcome.done += 1


# Started by no person: acting on every run is for an operator at the server only (the
# CLI, a Python shell). A run from a schedule has no person to act as.
OPERATOR_SOURCES = (Source.CLI, Source.SHELL)


def run_as_job(task_id: str, action: str, query: str, expected: int) -> dict:
    """The body of the job `bulk_runs`: acts as the person who started it (its run's
    requester, from where they started it), reporting progress per batch."""
    from django.http import QueryDict

    from .progress import report_progress
    from .run_filters import read_query

    own = Run.objects.select_related("requested_by").get(task_id=task_id)
    user = own.requested_by
    if user is None and own.source in (Source.WEB, Source.API, Source.ADMIN):
        raise PermissionError("the person who started this bulk action no longer exists")
    if user is None and own.source not in OPERATOR_SOURCES:
        raise PermissionError(
            f"a bulk action acts as the person who starts it, and this run (source: "
            f"{own.source}) has none: start it from /runs/, the API or `manage.py jobs bulk`"
        )
    runs_filter = read_query(QueryDict(query))

    def progress(done: int, total: int) -> None:
        report_progress(done, total, f"{done} of {total} runs")

    outcome = perform(user, Action(action), runs_filter, expected, source=own.source,
                      label=own.requested_by_label, progress=progress)  # fmt: skip
    return {**outcome.as_dict(), "summary": outcome.summary()}
