"""/runs/: every run the user may see, newest first, filtered, paged without COUNT(*)."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.jobs import views
from apps.jobs.models import Source, State
from tests.helpers import make_run, make_superuser, make_user

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"
COUNTDOWN = "apps.demo.tasks.countdown"


def shown(response) -> list[int]:
    return [run.pk for run in response.context["page"].runs]


def link(response, css_class: str = "") -> str:
    text = re.search(rf'<a {css_class}href="(/runs/\?[^"]+)">'.encode(), response.content)
    return text[1].decode().replace("&amp;", "&") if text else ""


def test_the_runs_list_needs_a_login(client):
    assert client.get("/runs/")["Location"].startswith("/accounts/login/?next=/runs/")


def test_runs_are_listed_newest_first(client):
    now = timezone.now()
    old = make_run(queued_at=now - dt.timedelta(hours=1))
    new = make_run(queued_at=now)
    client.force_login(make_superuser())
    assert shown(client.get("/runs/")) == [new.pk, old.pk]


def test_a_user_sees_runs_of_the_jobs_they_may_run_and_their_own(client):
    alice = make_user("alice", jobs=(ADD,))
    of_add = make_run(ADD)
    own = make_run(COUNTDOWN, requested_by=alice)
    make_run(COUNTDOWN)
    make_run("apps.demo.tasks.mul", source=Source.SHELL)
    client.force_login(alice)
    assert sorted(shown(client.get("/runs/"))) == sorted([of_add.pk, own.pk])


def test_a_user_who_may_view_all_runs_sees_every_run(client):
    from django.contrib.auth.models import Permission

    auditor = make_user("auditor")
    auditor.user_permissions.add(Permission.objects.get(codename="view_all_runs"))
    make_run(ADD), make_run("apps.demo.tasks.mul")
    client.force_login(auditor)
    assert len(shown(client.get("/runs/"))) == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"job": COUNTDOWN}, {"countdown"}),
        ({"state": "failed"}, {"failed"}),
        ({"source": "cli"}, {"cli"}),
        ({"user": "alice"}, {"alice's"}),
        ({"date_from": "2030-01-02"}, {"new"}),
        ({"date_to": "2030-01-01"}, {"countdown", "failed", "cli", "alice's"}),
        ({"date_from": "2030-01-02", "date_to": "2030-01-02"}, {"new"}),
        ({"state": "failed", "source": "cli"}, set()),
    ],
)
def test_runs_can_be_filtered(client, query, expected):
    alice = make_user("alice")
    day1 = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    runs = {
        "countdown": make_run(COUNTDOWN, queued_at=day1),
        "failed": make_run(state=State.FAILED, queued_at=day1),
        "cli": make_run(source=Source.CLI, queued_at=day1),
        "alice's": make_run(requested_by=alice, queued_at=day1),
        "new": make_run(queued_at=day1 + dt.timedelta(days=1)),
    }
    client.force_login(make_superuser())
    names = {pk: name for name, run in runs.items() for pk in [run.pk]}
    assert {names[pk] for pk in shown(client.get("/runs/", query))} == expected


@pytest.mark.parametrize("day", ["9999-12-31", "9999-12-30", "0001-01-01", "2100-01-01",
                                 "1999-12-31"])  # fmt: skip
@pytest.mark.parametrize("field", ["date_from", "date_to"])
def test_a_date_filter_out_of_range_is_reported_on_its_field_not_a_500(client, field, day):
    run = make_run()
    client.force_login(make_superuser())
    response = client.get("/runs/", {field: day})
    assert response.status_code == 200
    assert set(response.context["filters"].errors) == {field}
    assert "out of range" in response.content.decode()
    assert shown(response) == [run.pk]  # the bad filter is not applied


def test_an_invalid_filter_is_reported_and_not_applied(client):
    make_run()
    client.force_login(make_superuser())
    response = client.get("/runs/", {"state": "exploded", "date_from": "soon"})
    assert set(response.context["filters"].errors) == {"state", "date_from"}
    assert len(shown(response)) == 1


def test_pages_follow_older_and_newer_runs_and_keep_the_filters(client, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    now = timezone.now()
    same_time = [make_run(queued_at=now) for _ in range(4)]  # ties broken by id
    older = [make_run(queued_at=now - dt.timedelta(minutes=i)) for i in range(1, 4)]
    make_run(COUNTDOWN, queued_at=now)  # filtered out
    expected = [r.pk for r in reversed(same_time)] + [r.pk for r in older]
    client.force_login(make_superuser())

    first = client.get("/runs/", {"job": ADD})
    assert shown(first) == expected[:3]
    assert first.context["page"].newer is None
    second = client.get(link(first, 'class="older" '))
    assert "job=apps.demo.tasks.add" in link(first, 'class="older" ')
    assert shown(second) == expected[3:6]
    third = client.get(link(second, 'class="older" '))
    assert shown(third) == expected[6:]
    assert third.context["page"].older is None
    back = client.get("/runs/", {"job": ADD, "before": third.context["page"].newer})
    assert shown(back) == expected[3:6]


def test_a_bad_cursor_shows_the_first_page(client):
    make_run()
    client.force_login(make_superuser())
    assert len(shown(client.get("/runs/", {"after": "nonsense"}))) == 1


@pytest.mark.parametrize("superuser", [True, False])
def test_the_runs_list_queries_do_not_grow_with_rows(client, monkeypatch, superuser):
    monkeypatch.setattr(views, "PAGE_SIZE", 10)
    user = make_superuser() if superuser else make_user("alice", jobs=(ADD,))
    client.force_login(user)
    bob = make_user("bob")  # each row's user would be one query without select_related
    for _ in range(2):
        make_run(requested_by=bob)
    client.get("/runs/")
    with CaptureQueriesContext(connection) as few:
        client.get("/runs/", {"source": "web"})
    for _ in range(30):
        make_run(requested_by=bob)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/runs/", {"source": "web"})
    assert len(shown(response)) == 10
    assert len(many) == len(few)
    assert not any("COUNT(" in q["sql"].upper() for q in many.captured_queries)
