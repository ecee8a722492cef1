"""A run row whose stored parameters are not a JSON object, or whose positional
arguments are not a JSON array (written by hand, by an older version or another tool):
it still lists and shows everywhere, and running it again is refused with a message at
every door (web, API, CLI, results admin), with nothing sent."""

import pytest
from django.core.management import CommandError, call_command

from apps.jobs.models import Run, State
from tests.helpers import make_run, make_superuser

pytestmark = pytest.mark.django_db

ODD = [{"parameters": ["x"]}, {"parameters": "x=1"}, {"parameters": 5},
       {"args": {"a": 1}}, {"args": "1, 2"}]  # fmt: skip


def make_odd_run(**stored) -> Run:
    run = make_run(state=State.FAILED, parameters={"x": 1, "y": 2})
    Run.objects.filter(pk=run.pk).update(**stored)  # as another tool would write it
    return run


@pytest.fixture
def root(client):
    client.force_login(make_superuser())
    return client


@pytest.mark.parametrize("stored", ODD)
def test_it_still_lists_and_shows_in_the_api(root, stored):
    run = make_odd_run(**stored)
    assert root.get("/api/runs").status_code == 200
    assert root.get(f"/api/runs/{run.pk}").status_code == 200
    assert root.get(f"/runs/{run.pk}/").status_code == 200


@pytest.mark.parametrize("stored", ODD)
def test_running_it_again_is_refused_at_every_door_and_sends_nothing(root, stored):
    run = make_odd_run(**stored)
    field = next(iter(stored))
    page = root.post(f"/runs/{run.pk}/rerun/", follow=True).content.decode()
    assert "Not run again" in page and field in page
    response = root.post(f"/api/runs/{run.pk}/retry", content_type="application/json")
    assert response.status_code == 422 and field in response.json()["errors"]
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "retry", str(run.pk))
    assert refused.value.returncode == 2 and field in str(refused.value)
    assert Run.objects.count() == 1
