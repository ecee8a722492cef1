"""Pages at 1,000,000 rows: the results admin (stock beside Switchyard's), /runs/, /.

    .venv/bin/python -m bench.admin_pages [--rows 1000000] [--repeat 15] [--quick]
                                          [--no-stock] [--no-write]

Starts its own PostgreSQL and Redis (bench.common.private_stack), loads N TaskResult
rows and N matching Run rows with INSERT ... SELECT generate_series (30 days of history,
7 % failures, a fifth from 10 schedules, 4 workers; vacuumed as autovacuum leaves a
settled table), then times each page in this
process through Django's test client as a logged-in superuser: server time (middleware,
view, queries, template), warm (after warm-up requests), p50/p95 of `--repeat` requests.

Stock is django-celery-results' own TaskResultAdmin on a second AdminSite, timed with
only its own indexes (Switchyard's apps.ops indexes dropped); then the indexes are
created again and Switchyard's pages are timed. For the dashboard one worker runs: its
broker answer is cached for 5 s; "broker asked again" empties that cache before each
request (the first waits the full 1 s inspect timeout, later ones only until the known
workers answered). Before timing, the objects start-up made are frozen out of the
garbage collector's sight, as project/wsgi.py does in a served process.
"""

import argparse
import gc
import json
import time
from datetime import timedelta
from urllib.parse import urlencode

from apps.devstack import processes

from .common import command_line, machine, percentile, private_stack, write_section

TASKS = ["apps.demo.tasks.add", "apps.demo.tasks.mul", "apps.demo.tasks.xsum",
         "apps.demo.tasks.countdown", "apps.maintenance.tasks.clear_sessions",
         "apps.demo.tasks.flaky"]  # fmt: skip
OURS, STOCK = (
    "/admin/django_celery_results/taskresult/",
    "/stock-admin/django_celery_results/taskresult/",
)
HEADING = "Pages at 1,000,000 rows"
INTRO = """
Server time of each page (Django's test client in one process: middleware, view,
queries, template; warm, after warm-up requests), with N django-celery-results rows and N
run records on PostgreSQL. Stock is django-celery-results' own `TaskResultAdmin` with its
own indexes; Switchyard's is `apps.ops.admin.ResultAdmin` with the indexes of
`apps/ops/migrations/0003_taskresult_indexes.py`. Goal (issue 8): every page p95 < 200 ms.

Where Switchyard's time goes (EXPLAIN ANALYZE and cProfile at 1,000,000 rows): every
query of a results page runs in under 10 ms (a count capped at 10,001 index entries, the
planner's estimate past that, the page by an index range, one query for its runs, one
for its schedules) but page 500's, 11-20 ms (its 100 ids found in the index first, then
their rows). The rest is Python, about 40 ms of CPU a page where it was about 90: the
table's 100 rows x 10 columns are built in one pass (apps/ops/result_rows.py: each
column worked out once a page, the stock admin's HTML; about 10 ms where Django's
`items_for_result` took 35-55), the run and schedule links of a page cost one reverse()
each, and the list does not read the stored results and tracebacks. What is left is the
admin around the table (sidebar, filters, actions, pagination: about 15 ms), the page's
runs as model instances (about 8 ms), and the request itself. The objects start-up made
are frozen out of the garbage collector's sight (gc.freeze() in project/wsgi.py, and here
before timing): without it, one request in about 40 waited 90-160 ms for a full
collection. p95 still moves with the machine's load (2 cores shared with other work here).

Stock spends its time on two full COUNT(*)s, SELECT DISTINCT over every row for each
filter, the date drill-down, and five ORed substring scans for a search.

Parameter search (issue 17; docs/runs.md): each run's parameters hold a `customer_id`
(100 runs per value) and an `email` (200 runs per address, 7 domains). Equality
(`param.customer_id=4242`) is `parameters @> '{"customer_id": 4242}'` OR the string form,
served by the GIN index `run_parameters_gin` (jsonb_path_ops) whatever the other
filters; the bulk action's confirmation counts the same set. A substring
(`param.email~...`) has no index: the list walks the newest-first index until its page
is full, so a substring many runs share is quick and a rare one reads much of the table
(its time grows with the table). "Failed for good" groups the newest 10,000 failures:
they and their count come from a partial index of unhandled failures that holds the
columns the grouping reads (`run_unhandled_failures`, an index-only scan once vacuum
has marked the table's settled pages all-visible; 180 -> 50 ms at p50 here), then one
stored-result lookup each.
"""


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    global PAGE, PAGE_LABEL
    PAGE = min(500, max(1, args.rows // 200))  # 100 rows a page: at most half way in
    PAGE_LABEL = f"results: page {PAGE}"
    with private_stack() as stack:
        description = machine()
        started = time.monotonic()
        load(args.rows)
        loaded = time.monotonic() - started
        rows = measure(args, stack)
    text = report(rows, args, description, loaded)
    print(text)
    if not args.no_write:
        write_section(HEADING, INTRO)
        write_section(HEADING, text, subheading=f"{args.rows:,} rows")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per page")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 5 requests")
    parser.add_argument(
        "--no-stock",
        action="store_true",
        help="time only Switchyard's pages (to iterate; implies --no-write)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeat = min(args.rows, 100_000), 5
    args.no_write = args.no_write or args.no_stock
    return args


# Data ---------------------------------------------------------------------------------


def load(rows: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "pw")
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    for n in range(10):
        PeriodicTask.objects.create(name=f"schedule {n}", task=TASKS[n % 3], interval=every)
    step = 30 * 86400 / rows  # 30 days of history, newest first
    with connection.cursor() as cursor:
        cursor.execute(RESULTS_SQL, [TASKS, step, rows])
        columns, values, params = run_columns(user.pk)
        cursor.execute(
            f"INSERT INTO jobs_run ({', '.join(columns)}) SELECT {', '.join(values)} "
            "FROM django_celery_results_taskresult",
            params,
        )
        cursor.execute(
            "UPDATE jobs_run SET state = 'progress', progress_done = 3, progress_total = 10,"
            " finished_at = NULL WHERE id IN (SELECT id FROM jobs_run ORDER BY queued_at DESC"
            " LIMIT 20)"
        )
        cursor.execute("VACUUM ANALYZE django_celery_results_taskresult")
        cursor.execute("VACUUM ANALYZE jobs_run")
        # As autovacuum leaves a table that has settled: every page all-visible, for
        # index-only scans. The first VACUUM of jobs_run after the load leaves its
        # visibility map empty (relallvisible 0, measured); a second one sets it.
        cursor.execute("VACUUM jobs_run")


RESULTS_SQL = """
INSERT INTO django_celery_results_taskresult
    (task_id, periodic_task_name, task_name, task_args, task_kwargs, status, worker,
     content_type, content_encoding, result, date_created, date_started, date_done,
     traceback, meta)
SELECT md5('task' || i)::uuid::text,
       CASE WHEN mod(i, 5) = 0 THEN 'schedule ' || mod(i / 5, 10) END,
       (%s::text[])[1 + mod(i * 7, 6)],
       '"()"', '"{''x'': 1}"',
       CASE WHEN mod(i * 37, 100) < 90 THEN 'SUCCESS' WHEN mod(i * 37, 100) < 97 THEN 'FAILURE'
            WHEN mod(i * 37, 100) < 99 THEN 'REVOKED' ELSE 'RETRY' END,
       'worker' || mod(i, 4) || '@bench',
       'application/json', 'utf-8', '42',
       done - interval '3 seconds', done - interval '2 seconds', done,
       NULL, '{"children": []}'
FROM (SELECT i, now() - make_interval(secs => i * %s) AS done
      FROM generate_series(1, %s) AS i) AS s
"""


def run_columns(user_id: int) -> tuple[list[str], list[str], list]:
    """Column list and SELECT expressions for jobs_run, from the model (new fields get
    their default), mapped from each TaskResult row."""
    from django.db.models import JSONField

    from apps.jobs.models import Run

    mapped = {
        "task_id": "task_id",
        "job_name": "task_name",
        # customer_id: 100 runs per value; email: 200 runs per address, 7 domains.
        "parameters": "jsonb_build_object('x', 1, 'customer_id', mod(id, 10000), 'email', "
        "'user' || mod(id, 5000) || '@example' || mod(id, 7) || '.com')",
        "args": "'[]'::jsonb",
        "source": "CASE WHEN periodic_task_name IS NULL THEN 'web' ELSE 'schedule' END",
        "requested_by_id": f"CASE WHEN mod(id, 3) = 0 THEN {int(user_id)} END",
        "requested_by_label": "'bench'",
        "schedule_name": "coalesce(periodic_task_name, '')",
        "state": "CASE status WHEN 'SUCCESS' THEN 'succeeded' WHEN 'FAILURE' THEN 'failed' "
        "WHEN 'REVOKED' THEN 'cancelled' ELSE 'retrying' END",
        "queued_at": "date_created",
        "started_at": "date_started",
        "finished_at": "CASE WHEN status = 'RETRY' THEN NULL ELSE date_done END",
        "worker": "worker",
        "deliveries": "1",
    }
    columns, values, params = [], [], []
    for field in Run._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.name in mapped or field.column in mapped:
            values.append(mapped.get(field.name) or mapped[field.column])
        elif field.has_default():
            default = field.get_default()
            if isinstance(field, JSONField):
                values.append("%s::jsonb")
                params.append(json.dumps(default))
            else:
                values.append("%s")
                params.append(default)
        else:
            values.append("NULL" if field.null else "''")
    return columns, values, params


# Timing -------------------------------------------------------------------------------


def measure(args, stack) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    with override_settings(ROOT_URLCONF="bench.stock_admin_urls", SECURE_SSL_REDIRECT=False,
                           ALLOWED_HOSTS=["*"]):  # fmt: skip
        client = Client()
        from django.contrib.auth import get_user_model

        client.force_login(get_user_model().objects.get(username="bench"))
        sample = _sample_task_id(connection)
        gc.collect()
        gc.freeze()  # as project/wsgi.py does after start-up
        stock = {} if args.no_stock else time_stock_pages(client, sample, args.repeat)
        ours = {name: time_page(client, url, args.repeat)
                for name, url in our_pages(sample).items()}  # fmt: skip
        worker = start_worker(stack)
        try:
            extra = other_pages(client, args.repeat)
        finally:
            processes.stop_all([worker])
    rows = [{"page": name, "stock": stock.get(name), "ours": ours[name]} for name in ours]
    return rows + [{"page": name, "stock": None, "ours": timing} for name, timing in extra]


def time_stock_pages(client, sample: str, repeat: int) -> dict[str, dict]:
    """Stock's pages, with only django-celery-results' own indexes."""
    set_ops_indexes(create=False)
    try:
        return {name: time_page(client, url, repeat) for name, url in stock_pages(sample).items()}
    finally:
        set_ops_indexes(create=True)


def start_worker(stack):
    """One worker for the dashboard to inspect, as on a live site."""
    import subprocess

    from celery import current_app

    worker = processes.spawn(processes.worker_command(1), env=stack.env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not current_app.control.ping(timeout=1):
        pass
    return worker


def _sample_task_id(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT md5('task' || 424242)::uuid::text")
        return cursor.fetchone()[0]


PAGE = 500  # lowered for small --rows (bench.admin_pages sets it from the row count)
PAGE_LABEL = "results: page 500"


def our_pages(task_id: str) -> dict[str, str]:
    return {
        "results: default": OURS,
        "results: state filter": f"{OURS}?status=FAILURE",
        "results: job filter": f"{OURS}?task_name=apps.demo.tasks.mul",
        "results: schedule filter": f"{OURS}?periodic_task_name=schedule+3",
        "results: worker filter": f"{OURS}?worker=worker2%40bench",
        "results: date filter (24 h)": f"{OURS}?done_within=24h",
        "results: search task id": f"{OURS}?q={task_id}",
        "results: search task name": f"{OURS}?q=apps.demo.tasks.mu",
        PAGE_LABEL: f"{OURS}?p={PAGE}",
    }


def stock_pages(task_id: str) -> dict[str, str]:
    from django.utils import timezone

    since = urlencode({"date_done__gte": (timezone.now() - timedelta(hours=24)).isoformat()})
    return {
        "results: default": STOCK,
        "results: state filter": f"{STOCK}?status__exact=FAILURE",
        "results: job filter": f"{STOCK}?task_name__exact=apps.demo.tasks.mul",
        "results: schedule filter": f"{STOCK}?periodic_task_name__exact=schedule+3",
        "results: worker filter": f"{STOCK}?worker__exact=worker2%40bench",
        "results: date filter (24 h)": f"{STOCK}?{since}",
        "results: search task id": f"{STOCK}?q={task_id}",
        "results: search task name": f"{STOCK}?q=apps.demo.tasks.mu",
        PAGE_LABEL: f"{STOCK}?p={PAGE}",
    }


def other_pages(client, repeat: int) -> list[tuple[str, dict]]:
    from django.core.cache import cache
    from django.urls import NoReverseMatch, reverse

    pages = []
    try:
        pages.append(("/runs/", time_page(client, reverse("jobs:runs"), repeat)))
        pages.append(("/runs/?state=failed", time_page(client, reverse("jobs:runs") +
                                                       "?state=failed", repeat)))  # fmt: skip
        for name, url in PARAM_PAGES:
            pages.append((name, time_page(client, url, repeat)))
    except NoReverseMatch:
        pass
    from apps.jobs import inspect
    from apps.ops.dashboard import CHART_KEY

    def warm() -> None:
        inspect.snapshot()  # asks the broker (1 s) only when the 5 s cache expired

    def charts_cold() -> None:
        warm()
        cache.delete(CHART_KEY)

    def broker_cold() -> None:
        cache.delete(inspect.CACHE_KEY)

    for name, url, before in [
        ("dashboard / (warm caches)", "/", warm),
        ("dashboard / (charts recomputed)", "/", charts_cold),
        ("dashboard / (broker asked again)", "/", broker_cold),
        ("dashboard part: runs", "/dashboard/runs/", warm),
    ]:
        pages.append((name, time_page(client, url, repeat, before=before)))
    return pages


# Parameter search (issue 17): equality through the GIN index on Run.parameters
# (apps/jobs/migrations/0005_run_handled_and_param_index.py), combined with a state, a
# substring that many runs match, one that few match (no index serves a substring: the
# list reads newest first until its page is full), and the bulk action's count.
PARAM_PAGES = [
    ("/runs/?param.customer_id=4242 (100 runs)", "/runs/?param.customer_id=4242"),
    ("/runs/?param.customer_id=4242&state=failed", "/runs/?param.customer_id=4242&state=failed"),
    ("/runs/?param.email~@example3.com (1 in 7)", "/runs/?param.email~@example3.com"),
    ("/runs/?param.email~user4242@ (200 runs)", "/runs/?param.email~user4242@"),
    ("/runs/bulk/?action=retry&param.customer_id=4242 (count)",
     "/runs/bulk/?action=retry&param.customer_id=4242"),
    ("/runs/failed/ (failed for good, grouped)", "/runs/failed/"),
]  # fmt: skip


def time_page(client, url: str, repeat: int, warmup: int = 2, before=None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    if before:
        before()
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    query_count = len(queries)  # read now: the next request clears the log
    times = []
    for _ in range(repeat):
        if before:
            before()
        began = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - began) * 1000)
    return {"p50": percentile(times, 0.5), "p95": percentile(times, 0.95),
            "queries": query_count, "url": url}  # fmt: skip


def set_ops_indexes(*, create: bool) -> None:
    import importlib

    from django.db import connection

    migration = importlib.import_module("apps.ops.migrations.0003_taskresult_indexes")
    with connection.schema_editor() as editor:
        (migration.create if create else migration.drop)(None, editor)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_celery_results_taskresult")


# Report -------------------------------------------------------------------------------


def report(rows: list[dict], args, description: str, loaded: float) -> str:
    lines = [
        f"{args.rows:,} TaskResult rows and {args.rows:,} runs (loaded in {loaded:.0f} s); "
        f"{args.repeat} timed requests per page after 2 warm-up requests.",
        "",
        "| page | stock p50 | stock p95 | Switchyard p50 | Switchyard p95 | stock p95 / ours "
        "| queries (ours) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        stock, ours = row["stock"], row["ours"]
        ratio = f"{stock['p95'] / ours['p95']:.1f}x" if stock else ""
        lines.append(
            f"| {row['page']} | {_ms(stock, 'p50')} | {_ms(stock, 'p95')} | {_ms(ours, 'p50')} "
            f"| {_ms(ours, 'p95')} | {ratio} | {ours['queries']} |"
        )
    worst = max(rows, key=lambda r: r["ours"]["p95"])
    under = sum(1 for r in rows if r["ours"]["p95"] < 200)
    lines += [
        "",
        f"Goal p95 < 200 ms: {under} of {len(rows)} pages meet it; the slowest is "
        f"{worst['page']} at {worst['ours']['p95']:.0f} ms.",
        "",
        f"Machine: {description}. PostgreSQL 15 (fsync off, throwaway cluster).",
        "",
        f"Reproduce: `{command_line('bench.admin_pages')}`",
    ]
    return "\n".join(lines)


def _ms(timing: dict | None, key: str) -> str:
    return f"{timing[key]:.0f} ms" if timing else "-"


if __name__ == "__main__":
    main()
