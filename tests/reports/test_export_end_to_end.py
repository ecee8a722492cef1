"""An export started from the web, written by the real worker, downloaded by its owner."""

import pytest

from apps.jobs.models import Run, State
from apps.reports import export
from tests.helpers import make_user, wait_for
from tests.reports.helpers import EXPORT_JOB, make_runs, read_csv

pytestmark = pytest.mark.django_db(transaction=True)


def test_export_from_the_runs_list_to_the_downloaded_file(celery_worker, client, settings,
                                                           tmp_path):  # fmt: skip
    settings.MEDIA_ROOT = tmp_path
    alice = make_user("alice", jobs=(EXPORT_JOB, "apps.demo.tasks.add"))
    make_runs(4500, state=State.FAILED)
    make_runs(10, state=State.SUCCEEDED)
    client.force_login(alice)

    response = client.post("/runs/export", {"state": "failed"})
    run = Run.objects.get(job_name=EXPORT_JOB)
    assert response["Location"] == run.get_absolute_url()
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.SUCCEEDED).exists(), timeout=60)

    run.refresh_from_db()
    assert run.progress_done == run.progress_total == 4500
    download = client.get(f"/exports/{run.pk}/download")
    rows = read_csv(b"".join(download.streaming_content))
    assert rows[0] == export.HEADER
    assert len(rows) == 4501 and {row[3] for row in rows[1:]} == {"failed"}


def test_the_cleanup_job_runs_through_the_worker(celery_worker, settings, tmp_path):
    from apps.reports.tasks import remove_expired_exports

    settings.MEDIA_ROOT = tmp_path
    assert remove_expired_exports.delay().get(timeout=30, interval=0.05) == 0
