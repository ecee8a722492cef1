"""The results admin: run columns, filters, search, actions, and constant queries."""

import json
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, Source, State
from apps.ops.admin import ResultAdmin
from apps.ops.paging import EstimatedCountPaginator
from tests.helpers import make_run, make_user

from .makers import make_result, make_run_with_result, make_schedule

pytestmark = pytest.mark.django_db
LIST = "/admin/django_celery_results/taskresult/"


def test_our_admin_replaces_the_stock_one():
    assert isinstance(admin.site._registry[TaskResult], ResultAdmin)


def test_the_list_shows_job_title_who_started_it_wait_run_time_and_links(root_client):
    user = make_user("alice")
    schedule = make_schedule("nightly add")
    run, result = make_run_with_result(requested_by=user, seconds=3)
    result.periodic_task_name = "nightly add"
    result.save()
    page = root_client.get(LIST).content.decode()
    assert "Add two numbers" in page
    assert "alice" in page and "(web)" in page
    assert "3.0 s" in page  # run time
    assert "1.0 s" in page  # wait: queued one second before it started
    assert reverse("jobs:run", args=[run.pk]) in page
    assert reverse("admin:django_celery_beat_periodictask_change", args=[schedule.pk]) in page


def test_a_result_without_a_run_record_still_lists(root_client):
    make_result("apps.demo.tasks.mul", status="SUCCESS")
    page = root_client.get(LIST)
    assert page.status_code == 200
    assert "apps.demo.tasks.mul" in page.content.decode()


def changelist_queries(client, url=LIST) -> list[str]:
    cache.clear()  # filter choices are cached: count them every time
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def test_the_list_page_runs_the_same_number_of_queries_for_3_or_30_rows(root_client):
    schedule = make_schedule("nightly add")
    for _ in range(3):
        make_run_with_result(schedule_name=schedule.name)
    few = changelist_queries(root_client)
    for _ in range(27):
        make_run_with_result(schedule_name=schedule.name)
    many = changelist_queries(root_client)
    assert len(many) == len(few)


@pytest.mark.parametrize("query", ["", "?status=FAILURE", "?task_name=apps.demo.tasks.add",
                                   "?done_within=24h", "?q=apps.demo"])  # fmt: skip
def test_no_list_page_counts_the_whole_table(root_client, query):
    make_run_with_result()
    for sql in changelist_queries(root_client, LIST + query):
        if "COUNT(" in sql.upper():
            assert "LIMIT" in sql.upper(), sql


def test_filters_narrow_by_state_job_schedule_worker_and_date(root_client):
    _, failed = make_run_with_result(status="FAILURE")
    other = make_result("apps.demo.tasks.mul", worker="w2@host", periodic_task_name="hourly")
    old = make_result("apps.demo.tasks.xsum", date_done=timezone.now() - timedelta(days=3))
    cases = {
        "status=FAILURE": {failed.task_id},
        "task_name=apps.demo.tasks.mul": {other.task_id},
        "periodic_task_name=hourly": {other.task_id},
        "worker=w2@host": {other.task_id},
        "done_within=24h": {failed.task_id, other.task_id},
    }
    for query, expected in cases.items():
        listed = root_client.get(f"{LIST}?{query}").context["cl"].result_list
        assert {r.task_id for r in listed} == expected, query
    assert old.task_id in {r.task_id for r in root_client.get(LIST).context["cl"].result_list}


def test_filter_choices_list_each_value_once_with_the_job_title(root_client):
    for _ in range(3):
        make_run_with_result()
    make_result("apps.demo.tasks.mul")
    page = root_client.get(LIST).content.decode()
    assert page.count("Add two numbers (apps.demo.tasks.add)") == 1
    assert "?task_name=apps.demo.tasks.mul" in page


def test_search_finds_an_exact_task_id_or_a_task_name_prefix_only(root_client):
    _, result = make_run_with_result()
    make_result("apps.demo.tasks.mul")

    def found(term):
        listed = root_client.get(LIST, {"q": term}).context["cl"].result_list
        return sorted(r.task_name for r in listed)

    assert found(result.task_id) == ["apps.demo.tasks.add"]
    assert found("apps.demo.tasks.m") == ["apps.demo.tasks.mul"]
    assert found("demo") == []  # no substring scans
    assert found(result.task_id[:8]) == []


def test_the_detail_page_still_opens(root_client):
    _, result = make_run_with_result()
    url = reverse("admin:django_celery_results_taskresult_change", args=[result.pk])
    assert root_client.get(url).status_code == 200


# Actions ------------------------------------------------------------------------------


def act(client, action, *results):
    return client.post(
        LIST,
        {"action": action, "_selected_action": [r.pk for r in results]},
        follow=True,
    )


def test_retry_starts_a_failed_run_again_as_the_admin_user(root_client):
    run, result = make_run_with_result(status="FAILURE", state=State.FAILED,
                                       parameters={"x": 2, "y": 5})  # fmt: skip
    response = act(root_client, "retry_failed", result)
    assert "Started 1 run again." in response.content.decode()
    again = Run.objects.get(rerun_of=run)
    assert (again.source, again.requested_by.username) == (Source.ADMIN, "root")
    assert again.parameters == {"x": 2, "y": 5}


def test_retry_of_a_result_without_a_run_uses_its_stored_arguments(root_client):
    result = make_result("apps.demo.tasks.mul", status="FAILURE",
                         task_args=json.dumps("(6, 7)"), task_kwargs=json.dumps("{}"))  # fmt: skip
    act(root_client, "retry_failed", result)
    again = Run.objects.get(job_name="apps.demo.tasks.mul")
    assert (again.args, again.parameters, again.source) == ([6, 7], {}, Source.ADMIN)


@pytest.mark.parametrize("stored", [
    "{[1]: 2}",  # a literal Python cannot build (unhashable key)
    "{{}: 1}", "{'x': 1, 'x': {[]: 0}}", "[" * 300 + "]" * 300, "not a literal",
])  # fmt: skip
def test_retry_of_a_result_whose_stored_arguments_cannot_be_read_says_so(root_client, stored):
    """A row written by another tool or an older version: refused with a message, not a
    500, and the other selected results are still retried."""
    odd = make_result("apps.demo.tasks.mul", status="FAILURE", task_kwargs=json.dumps(stored))
    fine = make_result("apps.demo.tasks.mul", status="FAILURE",
                       task_args=json.dumps("(6, 7)"), task_kwargs=json.dumps("{}"))  # fmt: skip
    response = act(root_client, "retry_failed", odd, fine)
    assert response.status_code == 200
    assert f"Not retried: {odd.task_id}: its arguments cannot be read back" in (
        response.content.decode()
    )
    assert Run.objects.get().args == [6, 7]


def test_retry_skips_runs_that_did_not_fail(root_client):
    _, result = make_run_with_result(status="SUCCESS")
    response = act(root_client, "retry_failed", result)
    assert "Skipped 1 that did not fail." in response.content.decode()
    assert Run.objects.count() == 1


def test_retry_starts_nothing_for_a_job_the_staff_member_may_not_run(client):
    user = make_user("bob")
    user.user_permissions.add(*_result_permissions())
    client.force_login(user)
    _, result = make_run_with_result(status="FAILURE", state=State.FAILED)
    response = act(client, "retry_failed", result)
    assert result.task_id not in response.content.decode()
    assert Run.objects.count() == 1


def _result_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="django_celery_results")


def test_terminate_cancels_the_running_run_and_skips_finished_ones(root_client):
    run = make_run("apps.demo.tasks.countdown", state=State.STARTED, started_at=timezone.now())
    running = make_result("apps.demo.tasks.countdown", task_id=run.task_id, status="STARTED")
    _, done = make_run_with_result(status="SUCCESS")
    response = act(root_client, "terminate_running", running, done).content.decode()
    assert "Asked 1 task to terminate." in response
    assert "Skipped 1" in response
    run.refresh_from_db()
    assert run.cancel_requested_at is not None


# The paginator ------------------------------------------------------------------------


def test_past_the_exact_limit_the_count_is_estimated_and_later_pages_still_load(monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_UP_TO", 5)
    for _ in range(12):
        make_result()
    paginator = EstimatedCountPaginator(TaskResult.objects.order_by("-date_done", "-id"), 5)
    assert paginator.count >= 6
    assert paginator.estimated
    assert len(paginator.page(3).object_list) == 2
    assert len(paginator.page(9).object_list) == 0  # past the estimate: empty, not an error


def test_small_tables_are_counted_exactly():
    for _ in range(4):
        make_result()
    paginator = EstimatedCountPaginator(TaskResult.objects.order_by("-id"), 2)
    assert (paginator.count, paginator.estimated, paginator.num_pages) == (4, False, 2)


def make_result_viewer(username: str = "vera", jobs: tuple[str, ...] = ()):
    """Staff who may view task results in the admin, and run only `jobs`."""
    from django.contrib.auth.models import Permission

    user = make_user(username, jobs=jobs)
    user.user_permissions.add(Permission.objects.get(codename="view_taskresult"))
    return user


SECRET_KWARGS = json.dumps("{'command': 'dumpdata', 'arguments': ['auth.user']}")


def detail_page(client, result) -> str:
    response = client.get(f"{LIST}{result.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_result_of_a_job_the_user_may_not_run_is_neither_listed_nor_shown(client):
    client.force_login(make_result_viewer(jobs=("apps.demo.tasks.add",)))
    hidden = make_result("apps.maintenance.tasks.run_command", status="FAILURE",
                         task_kwargs=SECRET_KWARGS, result='"pbkdf2_sha256$secret-hash"',
                         traceback="Traceback: at /srv/secret/path.py")  # fmt: skip
    shown = make_result("apps.demo.tasks.add")
    listing = client.get(LIST).content.decode()
    assert shown.task_id in listing and hidden.task_id not in listing
    response = client.get(f"{LIST}{hidden.pk}/change/", follow=True)
    page = response.content.decode()
    assert "exist" in page and response.redirect_chain[-1][0] == "/admin/"
    assert hidden.task_id not in page and "dumpdata" not in page and "secret" not in page


def test_the_detail_page_shows_them_to_those_who_may_run_the_job_and_to_superusers(
    client, root_client
):
    result = make_result("apps.maintenance.tasks.run_command", task_kwargs=SECRET_KWARGS,
                         traceback="Traceback: at /srv/secret/path.py")  # fmt: skip
    assert "dumpdata" in detail_page(root_client, result)
    client.force_login(make_result_viewer("rita", jobs=("apps.maintenance.tasks.run_command",)))
    page = detail_page(client, result)
    assert "dumpdata" in page and "/srv/secret/path.py" in page


def test_the_detail_page_shows_a_users_own_run_even_of_a_job_they_may_no_longer_run(client):
    user = make_result_viewer()
    client.force_login(user)
    run = make_run("apps.maintenance.tasks.run_command", requested_by=user)
    result = make_result("apps.maintenance.tasks.run_command", task_id=run.task_id,
                         task_kwargs=SECRET_KWARGS)  # fmt: skip
    assert "dumpdata" in detail_page(client, result)
