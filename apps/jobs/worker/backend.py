"""django-celery-results' database backend, storing each state change with one statement.

Selected in settings (CELERY_RESULT_BACKEND = "apps.jobs.worker.backend:SwitchyardBackend").
Same TaskResult table, same columns, same admin: only the writes differ.

- The stock backend runs get_or_create then save() for every state (a SELECT, then an
  INSERT in a transaction of its own, or a full-row UPDATE); this one runs a single
  INSERT ... ON CONFLICT (task_id) DO UPDATE, which PostgreSQL and SQLite both accept.
  date_created is kept from the first write; date_started is the STARTED time.
- The run record's own worker-side changes (started, then succeeded / failed / retrying)
  are written here: apps.jobs.recording's prerun handler asks `takes_over_run_updates`
  and notes the answer on the execution's `CurrentRun` (apps/jobs/current_run.py), and
  when this execution's STARTED state comes here, so does the run's: the statements
  are the run's own transitions, `Run.claim_start_statement` / `Run.finish_statement`.
  The signal handlers then skip what was written here.
- STARTED is written once, to the run: the run record is what shows a job running
  (the run page, /runs/, the dashboard). The result row is written when the job reports
  progress or ends, with the start time, in the same statement as the run's outcome (a
  data-modifying WITH on PostgreSQL; two statements on SQLite). Each task then writes
  its result row once instead of twice: of the per-task write cost, that row's fourteen
  indexes are the most (docs/performance.md). Tasks without a run record (Celery's own,
  housekeeping) are stored as the stock backend stores them, STARTED included.
- On PostgreSQL each statement is a prepared statement, parsed and planned once per
  connection (`execute_prepared`). A connection pooler in front of PostgreSQL must then
  keep prepared statements per client: PgBouncer 1.21+ with `max_prepared_statements`,
  or session pooling.
- Chords are joined by states, not by a count alone (`on_chord_part_return`): the stock
  counter is decremented once per member return and the chord given up when it reaches
  zero, so a member counted twice (run again after its worker was lost) or never (its
  worker was lost between storing its result and counting it; the redelivery is skipped
  as a duplicate) leaves the chord hanging. Here the counter only says when to look; the
  body is sent once every member's result is stored, by whichever return deletes the
  counter row first.
"""

import functools
import time

import psycopg
from celery import maybe_signature, states
from celery.app.task import get_actual_ignore_result
from django.db import InterfaceError, OperationalError, connections, router
from django.db.models import F
from django.utils import timezone
from django_celery_results.backends.database import DatabaseBackend, trigger_callback
from django_celery_results.models import ChordCounter, TaskResult

from .. import current_run, secrets, sending
from ..models import Run
from .recording import CELERY_STATES, claim_of, note_refused

OUTCOMES = (states.SUCCESS, states.FAILURE, states.RETRY)


class SwitchyardBackend(DatabaseBackend):
    # With CELERY_RESULT_BACKEND_ALWAYS_RETRY, a write that fails because the database
    # went away (a restart, a failover) is retried on a new connection, with a bound,
    # instead of losing the result (the stock backend retries InterfaceError only).
    # Tested by tests/reliability/test_postgres_restart.py.
    def exception_safe_to_retry(self, exc: Exception) -> bool:
        return isinstance(exc, OperationalError | InterfaceError)

    def on_backend_retryable_error(self, exc: Exception) -> None:
        connections[router.db_for_write(self.TaskModel)].close()

    def takes_over_run_updates(self, task) -> bool:
        """True if Celery will store this execution's STARTED result here (the same test
        as celery.app.trace): its run's start and outcome are then written with them."""
        request = task.request
        return not (
            request.is_eager or not task.track_started or get_actual_ignore_result(task, request)
        )

    def on_chord_part_return(self, request, state, result, **kwargs) -> None:
        """A chord member ended (or was skipped as a duplicate): count it, and once the
        count says all may be done, send the body if every member's result is stored."""
        group_id = request.group
        if not group_id or not request.id:
            return
        counters = ChordCounter.objects.filter(group_id=group_id)
        counters.filter(count__gt=0).update(count=F("count") - 1)
        counter = counters.first()
        if counter is None or counter.count > 0:
            return
        members = counter.group_result(app=self.app)
        if not all_stored(member.id for member in members):
            return  # counted twice: a later member's return looks again
        if ChordCounter.objects.filter(pk=counter.pk).delete()[0]:  # once among returns
            trigger_callback(self.app, maybe_signature(request.chord, app=self.app), members)

    def recheck_chord(self, request) -> None:
        """A chord member's duplicate delivery, skipped (apps.jobs.catalog): counted and
        looked at again, since its first delivery may have stopped before counting."""
        self.on_chord_part_return(request, None, None)

    def _store_result(self, task_id, result, status, traceback=None, request=None, using=None):
        connection = connections[using or router.db_for_write(self.TaskModel)]
        current = current_run.of(request)
        run_sql = run_change(current, request, task_id, status, connection)
        if status == states.STARTED and run_sql is not None:
            # The run alone says started (see above): no result row is built.
            current.started_at = timezone.now()
            note_run_change(current, task_id, status, store(connection, None, run_sql))
            return result
        row = self.result_row(task_id, result, status, traceback, request)
        if status == states.STARTED:
            row["date_started"] = timezone.now()
        elif started_at := started_at_of(current, task_id, status):
            row["date_started"] = started_at
        attempt = current.attempt if current is not None else None
        result_sql = upsert_sql(self.TaskModel, row, connection, attempt)
        updated = store(connection, result_sql, run_sql)
        if run_sql is not None:
            note_run_change(current, task_id, status, updated)
        return row["result"]

    def result_row(self, task_id, result, status, traceback, request) -> dict:
        """The result row's columns, as the stock backend writes them."""
        content_type, content_encoding, result = self.encode_content(result)
        # A job's secrets never reach the table in clear, whatever it returned or raised.
        known = secrets.values(getattr(request, "task", None), getattr(request, "args", None),
                               getattr(request, "kwargs", None))  # fmt: skip
        result, traceback = secrets.scrub(result, known), secrets.scrub(traceback, known)
        meta = {**self._get_meta_from_request(request),
                "children": self.current_task_children(request)}  # fmt: skip
        return {
            "task_id": task_id,
            "status": status,
            "result": result,
            "meta": self.encode_content(meta)[2],
            "content_encoding": content_encoding,
            "content_type": content_type,
            **self._get_extended_properties(request, traceback),
            # After the extended properties: the stock backend drops the traceback
            # when result_extended is off.
            "traceback": traceback,
        }


def all_stored(task_ids) -> bool:
    """Is every one of these tasks' final state (success or failure) stored?"""
    ids = list(task_ids)
    ready = TaskResult.objects.filter(task_id__in=ids, status__in=states.READY_STATES)
    return ready.count() == len(ids)


def started_at_of(current: current_run.CurrentRun | None, task_id: str, status: str):
    """When this execution started, for its result row: noted on its CurrentRun when
    STARTED came here; for a failure stored from outside the task's own context (its
    pool process lost, a time limit) or a revocation, the run record's start time."""
    if current is not None and current.started_at:
        return current.started_at
    if status in (states.FAILURE, states.REVOKED):
        return Run.objects.filter(task_id=task_id).values_list("started_at", flat=True).first()
    return None


def run_change(current, request, task_id: str, status: str, connection):
    """The run's transition that this state implies, as (sql, params), if this backend
    writes it: the prepared-statement form of claim_start / finish (apps/jobs/models.py)."""
    if current is None or not current.backend_writes:
        return None
    if status == states.STARTED:
        return Run.claim_start_statement(
            connection, task_id, **claim_of(request), attempt=current.attempt,
            no_flush=sending.claims_without_flush(connection),
        )  # fmt: skip
    if status in OUTCOMES and not current.skip:
        return Run.finish_statement(connection, task_id, CELERY_STATES[status], current.attempt)
    return None


def note_run_change(current, task_id: str, status: str, updated: int) -> None:
    """Tell the job body and the postrun handler what was written (see recording.py)."""
    if status == states.STARTED:
        # Cancelled while queued, or a duplicate of a finished run: the body is skipped.
        current.skip = updated == 0 and Run.objects.filter(task_id=task_id).exists()
    else:
        current.outcome_stored = True
        if updated == 0:
            note_refused(task_id, current.attempt)


def store(connection, result_sql: tuple[str, list] | None, run_sql=None) -> int:
    """Write the result and the run, either one alone if the other is None: one round
    trip on PostgreSQL. Returns how many runs were updated."""
    if connection.vendor == "postgresql":
        if result_sql is None:
            return execute_prepared(connection, *run_sql)[0]
        if run_sql is None:
            execute_prepared(connection, *result_sql)
            return 0
        sql = f"WITH run AS ({run_sql[0]} RETURNING 1), result AS ({result_sql[0]}) "
        sql += "SELECT count(*) FROM run"
        return execute_prepared(connection, sql, run_sql[1] + result_sql[1])[1][0]
    with connection.cursor() as cursor:
        if result_sql is not None:  # first: whoever sees the run finished finds its result
            cursor.execute(*result_sql)
        if run_sql is None:
            return 0
        cursor.execute(*run_sql)
        return cursor.rowcount


# Django turns psycopg's automatic preparing off (for connection poolers); this makes
# only the statements executed with prepare=True prepared.
ONLY_WHEN_ASKED = 2**31


def execute_prepared(connection, sql: str, params: list) -> tuple[int, tuple | None]:
    """Run one statement as a prepared statement: PostgreSQL parses and plans each of
    this module's few statements once per connection instead of once per task. Through
    Django's connection all the same: its health check, its error wrapping (retries see
    Django's OperationalError) and its query log. Returns (rowcount, first row)."""
    connection.validate_no_broken_transaction()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = ONLY_WHEN_ASKED
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone() if cursor.description else None
        rowcount = cursor.rowcount
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return rowcount, row


def upsert_sql(model, row: dict, connection, attempt: str | None = None) -> tuple[str, list]:
    """INSERT the result row, or UPDATE every column but task_id and date_created; with
    `attempt` (an execution of a run), the update only while that execution holds the
    run: a worker whose run was taken back does not overwrite the result of the
    execution that replaced it (the sweeper stores a row when it takes a run back)."""
    now = timezone.now()
    values = {"date_created": now, "date_done": now, **row}
    text = upsert_text(model, connection.alias, tuple(values), attempt is not None)
    params = db_values(model, values, connection)
    return text, params + ([attempt] if attempt is not None else [])


def db_values(model, values: dict, connection) -> list:
    # Plain strings and None go to the database as they are; the rest (dates, choices)
    # through their field, as the ORM would send them.
    return [value if value is None or type(value) is str
            else model._meta.get_field(name).get_db_prep_save(value, connection)
            for name, value in values.items()]  # fmt: skip


# The statements' text depends only on the columns written: built once each.


@functools.cache
def upsert_text(model, alias: str, names: tuple[str, ...], fenced: bool = False) -> str:
    quote = connections[alias].ops.quote_name
    columns = [quote(model._meta.get_field(name).column) for name in names]
    kept = {quote(model._meta.get_field(name).column) for name in ("task_id", "date_created")}
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in kept)
    table, key = quote(model._meta.db_table), quote(model._meta.get_field("task_id").column)
    placeholders = ", ".join(["%s"] * len(columns))
    # Only quoted names from the models' meta in the text; every value is a parameter.
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "  # noqa: S608
    sql += f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    return sql + (f" WHERE NOT EXISTS ({taken_back_text(alias, key)})" if fenced else "")


@functools.cache
def taken_back_text(alias: str, result_key: str) -> str:
    """The run of the row being written, held by another execution than %s."""
    quote = connections[alias].ops.quote_name
    column = {name: quote(Run._meta.get_field(name).column) for name in ("task_id", "attempt")}
    return (
        f"SELECT 1 FROM {quote(Run._meta.db_table)} "  # noqa: S608
        f"WHERE {column['task_id']} = EXCLUDED.{result_key} AND {column['attempt']} <> %s"
    )
