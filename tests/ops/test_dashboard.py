"""The dashboard at /: workers, queues, runs in progress, failures, missed, charts."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.devstack import processes
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import cancel_run, start_run
from apps.jobs.models import Run, Source, State
from apps.ops import heartbeat
from apps.ops.alerts import check_alerts
from apps.ops.models import Incident, Kind
from tests.helpers import make_run, make_superuser, make_user, point_celery_at, wait_for

from .makers import given_snapshot, make_finished_run, make_result, make_schedule


@pytest.fixture
def staff_client(client):
    client.force_login(make_superuser())
    return client


@pytest.mark.django_db
def test_the_dashboard_sends_anonymous_people_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


@pytest.mark.django_db
def test_the_dashboard_is_for_staff_only(client):
    client.force_login(make_user("carol", staff=False))
    assert client.get("/").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_with_a_worker_up_the_dashboard_shows_it_and_a_run_in_progress(
    staff_client, celery_worker
):
    heartbeat.record("beat")
    run = start_run(get_job("apps.demo.tasks.countdown"), {"seconds": 20}, source=Source.WEB)
    try:
        wait_for(lambda: Run.objects.filter(pk=run.pk, progress_done__gte=1).exists())
        # The worker list comes from remote control (cached a few seconds): wait for the
        # page that shows the worker, not just for the run to be in progress.
        page = wait_for(lambda: shows(staff_client.get("/").content.decode(),
                                      celery_worker.hostname), timeout=30)  # fmt: skip
    finally:
        stop(run)
    assert celery_worker.hostname in page
    assert '<tr class="worker online">' in page
    assert 'class="queue"><td>celery</td>' in page
    assert 'role="progressbar"' in page
    assert run.get_absolute_url() in page
    assert "Broker unreachable" not in page


def shows(page: str, text: str) -> str | None:
    return page if text in page else None


def stop(run: Run) -> None:
    """Cancel and wait: the session worker must not keep counting into other tests."""
    cancel_run(run)
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.CANCELLED).exists(), 15)


@pytest.mark.django_db
def test_with_the_broker_down_the_page_renders_quickly_and_says_so(staff_client, redis_url):
    point_celery_at(f"redis://127.0.0.1:{processes.free_port()}/0")
    try:
        began = time.monotonic()
        response = staff_client.get("/")
        elapsed = time.monotonic() - began
    finally:
        point_celery_at(redis_url)
    assert response.status_code == 200
    assert "Broker unreachable" in response.content.decode()
    assert elapsed < 10  # generous: shared machine; a hang would be minutes


@pytest.mark.django_db
def test_the_broker_answer_is_cached_briefly_so_polling_does_not_ask_again(
    staff_client, monkeypatch
):
    from apps.jobs import inspect

    asked = []
    real = inspect.take_snapshot
    monkeypatch.setattr(
        inspect, "take_snapshot", lambda limit=None: asked.append(1) or real(limit)
    )
    for _ in range(3):
        staff_client.get("/dashboard/workers/")
    assert len(asked) == 1


@pytest.mark.django_db
def test_a_worker_that_stopped_answering_is_listed_as_offline(staff_client):
    heartbeat.record("worker:gone@host")
    given_snapshot("w1@host")
    page = staff_client.get("/dashboard/workers/").content.decode()
    assert '<tr class="worker offline">' in page
    assert "gone@host" in page


@pytest.mark.django_db
def test_with_no_worker_answering_the_dashboard_warns(staff_client):
    given_snapshot()
    assert "No worker is answering" in staff_client.get("/").content.decode()


@pytest.mark.django_db
def test_recent_failures_show_the_error(staff_client):
    given_snapshot("w1@host")
    run = make_finished_run(state=State.FAILED)
    make_result(task_id=run.task_id, status="FAILURE",
                result='{"exc_type": "ValueError", "exc_message": ["bad input"]}')  # fmt: skip
    page = staff_client.get("/dashboard/failures/").content.decode()
    assert "ValueError" in page and "bad input" in page


@pytest.mark.django_db
def test_beat_down_and_missed_schedules_show_on_the_dashboard(staff_client):
    given_snapshot("w1@host")
    now = timezone.now()
    Incident.objects.create(kind=Kind.MISSED_RUN, key="nightly", schedule_name="nightly",
                            title="Schedule nightly missed its run", opened_at=now,
                            last_seen_at=now, link="/admin/x/")  # fmt: skip
    page = staff_client.get("/").content.decode()
    assert "Beat is down" in page
    assert '<tr class="missed">' in page and "nightly" in page


def make_incident(kind: str, key: str, title: str, **fields) -> Incident:
    now = timezone.now()
    return Incident.objects.create(kind=kind, key=key, title=title, opened_at=now,
                                   last_seen_at=now, **fields)  # fmt: skip


@pytest.mark.django_db
def test_incidents_show_only_the_jobs_the_viewer_may_see(client):
    given_snapshot("w1@host")
    make_incident(Kind.FAILED_RUN, "apps.maintenance.tasks.run_command",
                  "Run a management command failed",
                  job_name="apps.maintenance.tasks.run_command")  # fmt: skip
    make_incident(
        Kind.MISSED_RUN,
        "secret dump",
        "Schedule secret dump missed its run",
        job_name="apps.maintenance.tasks.run_command",
        schedule_name="secret dump",
    )
    make_incident(Kind.FAILED_RUN, "apps.demo.tasks.add", "Add two numbers failed",
                  job_name="apps.demo.tasks.add")  # fmt: skip
    make_incident(Kind.BEAT_DOWN, "beat", "Beat is not ticking")
    client.force_login(make_user("dora", jobs=("apps.demo.tasks.add",)))
    page = client.get("/").content.decode()
    assert "Add two numbers failed" in page and "Beat is not ticking" in page
    assert "management command" not in page and "secret dump" not in page
    client.force_login(make_superuser())
    page = client.get("/").content.decode()
    assert "Run a management command failed" in page and "secret dump" in page


@pytest.mark.django_db
def test_incident_links_point_at_the_site_serving_the_dashboard_not_site_url(client, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"  # the default, while this site is elsewhere
    given_snapshot("w1@host")
    run = make_finished_run(state=State.FAILED, finished_at=timezone.now() - timedelta(seconds=30))
    schedule = make_schedule("nightly", last_run_ago=timedelta(days=1))
    heartbeat.record("beat")
    check_alerts()
    client.force_login(make_superuser())
    page = client.get("/").content.decode()
    assert f'<a href="{run.get_absolute_url()}">Add two numbers failed</a>' in page
    change = reverse("admin:django_celery_beat_periodictask_change", args=[schedule.pk])
    assert f'<a href="{change}">nightly</a>' in page
    assert "127.0.0.1:8000" not in page


@pytest.mark.django_db
def test_an_incident_stored_with_an_absolute_link_links_to_the_same_path_here(staff_client):
    given_snapshot("w1@host")
    make_incident(Kind.FAILED_RUN, "apps.demo.tasks.add", "Add two numbers failed",
                  job_name="apps.demo.tasks.add",
                  link="http://127.0.0.1:8000/runs/124/")  # fmt: skip
    make_incident(Kind.MISSED_RUN, "nightly", "Schedule nightly missed its run",
                  schedule_name="nightly", link="http://127.0.0.1:8000/admin/x/7/")  # fmt: skip
    page = staff_client.get("/").content.decode()
    assert '<a href="/runs/124/">Add two numbers failed</a>' in page
    assert '<a href="/admin/x/7/">nightly</a>' in page
    assert "127.0.0.1:8000" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stored", "shown"),
    [("http://a//evil.example/x", "/evil.example/x"), ("/\\evil.example/x", "/evil.example/x"),
     ("//evil.example/x", "/x"), ("javascript:alert(1)", "/javascript:alert(1)")],
)  # fmt: skip
def test_an_incident_link_stored_by_hand_stays_a_path_on_this_site(staff_client, stored, shown):
    given_snapshot("w1@host")
    make_incident(Kind.FAILED_RUN, "apps.demo.tasks.add", "Add two numbers failed",
                  job_name="apps.demo.tasks.add", link=stored)  # fmt: skip
    page = staff_client.get("/").content.decode()
    assert f'<a href="{shown}">Add two numbers failed</a>' in page


@pytest.mark.django_db
def test_the_charts_are_inline_svg_with_bars_per_state_and_percentiles_per_job(staff_client):
    given_snapshot("w1@host")
    make_finished_run(seconds=2)
    make_finished_run(seconds=4, state=State.FAILED)
    page = staff_client.get("/dashboard/charts/").content.decode()
    assert page.count("<svg") == 2
    assert 'class="bar state-succeeded"' in page and 'class="bar state-failed"' in page
    assert "p50 2.0 s · p95 4.0 s · 2 runs" in page
    assert "Add two numbers" in page


def given_runs_of_two_jobs(bob) -> None:
    """Four runs of add (one failed), one of countdown, and one add that bob started."""
    for _ in range(3):
        make_finished_run("apps.demo.tasks.add")
    make_finished_run("apps.demo.tasks.add", state=State.FAILED)
    make_finished_run("apps.demo.tasks.countdown", seconds=5)
    make_finished_run("apps.demo.tasks.add", requested_by=bob)


def charts_seen_by(client, user) -> str:
    client.force_login(user)
    return client.get("/dashboard/charts/").content.decode()


@pytest.mark.django_db
def test_both_charts_count_only_the_runs_the_viewer_may_see(client):
    given_snapshot("w1@host")
    bob = make_user("bob", jobs=("apps.demo.tasks.countdown",))
    given_runs_of_two_jobs(bob)

    everything = charts_seen_by(client, make_superuser())
    assert ">succeeded 5</text>" in everything and ">failed 1</text>" in everything

    his = charts_seen_by(client, bob)  # countdown's run, and the add run he started
    assert ">succeeded 2</text>" in his and "failed" not in his
    assert "p50 5.0 s · p95 5.0 s · 1 runs" in his and "p50 2.0 s · p95 2.0 s · 1 runs" in his


@pytest.mark.django_db
def test_those_who_see_every_run_share_the_kept_charts_and_others_get_their_own(client):
    given_snapshot("w1@host")
    bob = make_user("bob", jobs=("apps.demo.tasks.countdown",))
    auditor = make_user("audrey")
    auditor.user_permissions.add(Permission.objects.get(codename="view_all_runs"))
    given_runs_of_two_jobs(bob)
    assert ">succeeded 5</text>" in charts_seen_by(client, make_superuser())  # now kept

    make_finished_run("apps.demo.tasks.countdown")
    assert ">succeeded 3</text>" in charts_seen_by(client, bob)  # worked out for him
    assert ">succeeded 5</text>" in charts_seen_by(client, auditor)  # the kept numbers


@pytest.mark.django_db
def test_each_part_reloads_itself_with_htmx_and_unknown_parts_are_404(staff_client):
    given_snapshot("w1@host")
    for part in ("health", "workers", "queues", "runs", "failures", "missed", "charts"):
        page = staff_client.get(f"/dashboard/{part}/").content.decode()
        assert f'hx-get="/dashboard/{part}/"' in page
        assert 'hx-swap="outerHTML"' in page
    assert staff_client.get("/dashboard/nothing/").status_code == 404


@pytest.mark.django_db
def test_the_dashboard_runs_the_same_number_of_queries_for_few_or_many_runs(staff_client):
    given_snapshot("w1@host")
    heartbeat.record("beat")

    def queries() -> int:
        from django.core.cache import cache

        from apps.ops import dashboard

        cache.delete(dashboard.CHART_KEY)
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get("/").status_code == 200
        return len(captured)

    queries()  # the workers' answers kept, as on a page viewed before
    for _ in range(2):
        make_run("apps.demo.tasks.countdown", state=State.PROGRESS, progress_total=10)
        make_finished_run(state=State.FAILED)
    few = queries()
    for _ in range(20):
        make_run("apps.demo.tasks.countdown", state=State.PROGRESS, progress_total=10)
        make_finished_run(state=State.FAILED)
    assert queries() == few
    assert Run.objects.filter(queued_at__gte=timezone.now() - timedelta(hours=1)).count() == 44


@pytest.mark.django_db
def test_a_refresh_waits_only_for_as_many_workers_as_the_last_full_look_found(monkeypatch):
    from django.core.cache import cache

    from apps.jobs import inspect

    limits = []

    def take_snapshot(limit=None):
        limits.append(limit)
        workers = (inspect.Worker("a@host"), inspect.Worker("b@host"))
        return inspect.Snapshot(timezone.now(), True, workers=workers)

    monkeypatch.setattr(inspect, "take_snapshot", take_snapshot)
    inspect.snapshot()
    cache.delete(inspect.CACHE_KEY)
    inspect.snapshot()
    monkeypatch.setattr(inspect, "FULL_EVERY", -1)  # time for a full look again
    cache.delete(inspect.CACHE_KEY)
    inspect.snapshot()
    assert limits == [None, 2, None]


@pytest.mark.django_db
def test_a_process_that_has_not_looked_yet_waits_only_for_the_workers_heard_from_lately(
    monkeypatch,
):
    """A web process just started (nothing kept): its first page does not wait out the
    whole timeout when other processes heard from the workers lately."""
    from django.core.cache import cache

    from apps.jobs import inspect
    from apps.ops import heartbeat
    from apps.ops.models import Heartbeat

    limits = []
    monkeypatch.setattr(inspect, "take_snapshot", lambda limit=None: limits.append(limit)
                        or inspect.Snapshot(timezone.now(), True))  # fmt: skip
    heartbeat.record("worker:a@host")
    heartbeat.record("worker:b@host")
    long_ago = timezone.now() - timedelta(seconds=3 * inspect.FULL_EVERY)
    Heartbeat.objects.create(name="worker:gone@host", seen_at=long_ago)
    inspect.snapshot()
    Heartbeat.objects.all().delete()
    for key in (inspect.CACHE_KEY, inspect.KNOWN_KEY):
        cache.delete(key)
    inspect.snapshot()
    assert limits == [2, None]


def make_held_run(worker: str, seconds_ago: float, **kw) -> Run:
    started = timezone.now() - timedelta(seconds=seconds_ago)
    return make_run(state=State.PROGRESS, worker=worker, started_at=started, queued_at=started,
                    progress_done=1, progress_total=2, **kw)  # fmt: skip


@pytest.mark.django_db
def test_a_silent_worker_past_the_threshold_shows_as_lost_with_the_runs_it_held(
    staff_client, settings
):
    settings.WORKER_LOST_AFTER_SECONDS = 45
    given_snapshot("w1@host")
    held = make_held_run("gone@host", seconds_ago=60)
    page = staff_client.get("/dashboard/workers/").content.decode()
    assert '<tr class="worker offline lost">' in page
    assert "gone@host" in page and held.get_absolute_url() in page
    assert "being taken back by the sweeper" in page


@pytest.mark.django_db
def test_a_worker_silent_for_less_than_the_threshold_is_not_answering_but_not_lost_yet(
    staff_client, settings
):
    settings.WORKER_LOST_AFTER_SECONDS = 45
    given_snapshot("w1@host")
    held = make_held_run("quiet@host", seconds_ago=5)
    page = staff_client.get("/dashboard/workers/").content.decode()
    assert '<tr class="worker offline">' in page and "(not answering)" in page
    assert held.get_absolute_url() in page and " lost" not in page


@pytest.mark.django_db
def test_a_run_on_a_silent_worker_shows_no_live_progress_bar_and_no_resend_button(
    staff_client, settings
):
    settings.WORKER_LOST_AFTER_SECONDS = 45
    given_snapshot("w1@host")
    make_held_run("gone@host", seconds_ago=60)
    live = make_held_run("w1@host", seconds_ago=60)
    runs = staff_client.get("/dashboard/runs/").content.decode()
    assert runs.count('role="progressbar"') == 1 and live.get_absolute_url() in runs
    assert "its worker is not answering (last report: 50%)" in runs
    assert "Re-send" not in staff_client.get("/dashboard/stuck/").content.decode()


@pytest.mark.django_db
def test_the_runs_a_lost_worker_held_are_listed_only_to_those_who_may_see_them(client, settings):
    settings.WORKER_LOST_AFTER_SECONDS = 45
    given_snapshot("w1@host")
    held = make_held_run(
        "gone@host", seconds_ago=60, job_name="apps.maintenance.tasks.run_command"
    )
    client.force_login(make_user("dora", jobs=("apps.demo.tasks.add",)))
    page = client.get("/dashboard/workers/").content.decode()
    assert "gone@host" in page and held.get_absolute_url() not in page


def charted_runs(data: dict) -> int:
    return sum(sum(per_hour) for per_hour in data["counts"].values())


@pytest.mark.django_db(transaction=True)
def test_charts_past_their_cache_time_are_shown_at_once_while_a_thread_works_them_out_again():
    from django.core.cache import cache

    from apps.jobs import revalidating
    from apps.ops import dashboard

    root = make_superuser()
    make_finished_run()
    first = dashboard.chart_data(root)  # none kept: worked out at once
    stale_since = time.time() - dashboard.CHART_CACHE_SECONDS - 1
    revalidating.store(dashboard.CHART_KEY, first, 600, stored_at=stale_since)
    make_finished_run()
    make_finished_run()

    assert dashboard.chart_data(root) == first  # no page waits for the new numbers
    wait_for(lambda: cache.get(dashboard.CHART_KEY)[0] > stale_since
             and not revalidating.refreshing(dashboard.CHART_KEY), timeout=30)  # fmt: skip
    assert charted_runs(dashboard.chart_data(root)) == charted_runs(first) + 2 == 3


@pytest.mark.django_db(transaction=True)
def test_a_broker_snapshot_past_its_cache_time_is_shown_while_a_thread_asks_the_broker_again():
    from apps.jobs import inspect, revalidating

    old = given_snapshot("gone@host")  # a worker that answered 6 s ago, and no longer
    revalidating.store(inspect.CACHE_KEY, old, 60, stored_at=time.time() - 6)

    assert inspect.snapshot() == old  # at once, with no broker call

    wait_for(lambda: revalidating.peek(inspect.CACHE_KEY) != old
             and not revalidating.refreshing(inspect.CACHE_KEY), timeout=30)  # fmt: skip
    asked = inspect.snapshot()
    assert asked.broker_ok and asked.taken_at > old.taken_at
    assert "gone@host" not in asked.worker_names
