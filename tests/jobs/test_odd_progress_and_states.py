"""A run row holding progress numbers no job may report (infinite, NaN, negative, a
total of 0) or a state or source this version does not know (written by hand, by an
older version or another tool): it still lists and shows at every door (the run page,
/runs/, the dashboard, the API's run and list, `jobs status` and `jobs runs`, the
results admin), as what is stored. Progress itself is refused at its source when it is
not a finite number from 0 to its total, so a job cannot store such numbers."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from apps.jobs.progress import report_progress
from tests.helpers import make_run, make_superuser

pytestmark = pytest.mark.django_db

INF, NAN = float("inf"), float("nan")
ODD_PROGRESS = [(INF, 10), (-INF, 10), (5, INF), (NAN, 10), (5, NAN), (-3, 10), (3, 0),
                (None, 10), (5, -10), (1e308, 1e-308)]  # fmt: skip
REFUSED = [(INF, 10), (5, INF), (NAN, 10), (5, NAN), (-1, 10), (1, -1), ("3", 10),
           (True, 2)]  # fmt: skip
RESULTS = "/admin/django_celery_results/taskresult/"
ODD_LABELS = [{"state": "bogus"}, {"source": "zzz"}, {"state": "bogus", "source": "zzz"}]


def make_odd_run(**stored) -> Run:
    run = make_run(state=State.PROGRESS, started_at=timezone.now(), worker="w1@host")
    TaskResult.objects.create(task_id=run.task_id, task_name=run.job_name, status="PROGRESS")
    Run.objects.filter(pk=run.pk).update(**stored)  # as another tool would write it
    return run


def odd_progress(done, total) -> Run:
    return make_odd_run(progress_done=done, progress_total=total, progress_message="odd")


def strict_json(text: str):
    """JSON as a strict parser reads it: NaN and Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def command(*args) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def root(client):
    client.force_login(make_superuser())
    return client


def assert_every_door_shows_it(root, run: Run) -> dict:
    for url in (f"/runs/{run.pk}/", "/runs/", "/", "/dashboard/runs/",
                RESULTS):  # fmt: skip
        assert root.get(url).status_code == 200, url
    result = TaskResult.objects.get(task_id=run.task_id)
    assert root.get(f"{RESULTS}{result.pk}/change/").status_code == 200
    listed = root.get("/api/runs")
    assert listed.status_code == 200
    assert [item["id"] for item in strict_json(listed.content)["items"]] == [run.pk]
    one = root.get(f"/api/runs/{run.pk}")
    assert one.status_code == 200
    assert f"run {run.pk}:" in command("status", str(run.pk))
    assert strict_json(command("status", str(run.pk), "--json"))["id"] == run.pk
    assert str(run.pk) in command("runs")
    assert strict_json(command("runs", "--json"))[0]["id"] == run.pk
    return strict_json(one.content)


@pytest.mark.parametrize(("done", "total"), ODD_PROGRESS)
def test_a_run_with_odd_stored_progress_still_shows_everywhere(root, done, total):
    run = odd_progress(done, total)
    shown = assert_every_door_shows_it(root, run)
    percent = shown["progress"]["percent"]
    assert percent is None or 0 <= percent <= 100


def test_its_percent_is_only_worked_out_from_finite_numbers_and_a_total_above_zero(root):
    cases = {(INF, 10): None, (5, INF): None, (-INF, 10): None, (3, 0): None, (5, -10): None,
             (-3, 10): 0, (None, 10): 0, (15, 10): 100, (1e308, 1e-308): 100,
             (-1e308, 1e-308): 0, (1, 4): 25}  # fmt: skip
    for (done, total), percent in cases.items():
        run = odd_progress(done, total)
        assert Run.objects.get(pk=run.pk).percent == percent, (done, total)
    # SQLite reads a stored NaN back as NULL; PostgreSQL keeps it.
    assert Run(progress_done=NAN, progress_total=10).percent is None
    assert Run(progress_done=5, progress_total=NAN).percent is None


def test_infinite_progress_numbers_are_shown_by_name_in_the_api_and_the_cli(root):
    run = odd_progress(-INF, INF)
    assert assert_every_door_shows_it(root, run)["progress"] == {
        "done": "-Infinity", "total": "Infinity", "percent": None, "message": "odd"}  # fmt: skip
    assert strict_json(command("status", str(run.pk), "--json"))["progress"]["total"] == "Infinity"
    assert "progress:     -Infinity/Infinity odd" in command("status", str(run.pk))


@pytest.mark.parametrize("stored", ODD_LABELS)
def test_a_run_with_an_unknown_state_or_source_still_shows_everywhere_as_stored(root, stored):
    run = make_odd_run(**stored)
    shown = assert_every_door_shows_it(root, run)
    for field, value in stored.items():
        assert shown[field] == value
        assert value in root.get(f"/runs/{run.pk}/").content.decode()


def test_one_odd_row_does_not_take_the_list_down_for_the_others(root):
    make_run(state=State.SUCCEEDED)
    make_odd_run(state="bogus", source="zzz", progress_done=INF, progress_total=10)
    listed = root.get("/api/runs")
    assert listed.status_code == 200
    assert len(strict_json(listed.content)["items"]) == 2


@pytest.mark.parametrize(("done", "total"), REFUSED)
def test_a_job_reporting_progress_that_is_not_a_finite_number_from_0_is_told_so(done, total):
    run = make_run(state=State.STARTED, started_at=timezone.now())
    with pytest.raises(ValueError, match="progress"):
        report_progress(done, total, "x")
    with pytest.raises(ValueError, match="progress"):
        Run.objects.filter(pk=run.pk).report_progress(done, total, "x")
    run.refresh_from_db()
    assert run.state == State.STARTED and run.progress_done is None


def test_progress_from_0_to_its_total_and_past_it_is_stored(root):
    run = make_run(state=State.STARTED, started_at=timezone.now())
    for done, total, percent in [(0, 0, None), (0, 10, 0), (2.5, 10, 25), (10, 10, 100),
                                 (12, 10, 100)]:  # fmt: skip
        assert Run.objects.filter(pk=run.pk).report_progress(done, total, "ok") == 1
        s = Run.objects.get(pk=run.pk)
        assert (s.progress_done, s.progress_total, s.percent) == (done, total, percent)
