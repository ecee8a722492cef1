"""export_runs' plain functions: the /runs/ filters, visibility, batches, expiry."""

import datetime as dt
import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.jobs.models import Source, State
from apps.reports import export
from apps.reports.models import Export
from tests.helpers import make_run, make_superuser, make_user
from tests.reports.helpers import EXPORT_JOB, make_runs, read_csv

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.EXPORT_EXPIRY_HOURS = 24
    return tmp_path


def make_export_run(user=None):
    return make_run(EXPORT_JOB, requested_by=user, state=State.STARTED)


def exported_rows(result: dict, media) -> list[list[str]]:
    return read_csv((media / result["file"]).read_text())


def test_the_csv_has_a_header_and_one_row_per_run_newest_first(media):
    make_runs(3)
    result = export.export_runs(make_export_run(make_superuser()), {})
    rows = exported_rows(result, media)
    assert rows[0] == export.HEADER
    # Three runs plus the export's own run record, which is newest.
    assert [r[2] for r in rows[1:]] == [EXPORT_JOB] + ["apps.demo.tasks.add"] * 3
    assert result["rows"] == 4 and result["file"].startswith("exports/")


def test_the_file_is_named_after_the_run_and_records_owner_and_expiry(media):
    alice = make_user("alice", jobs=(EXPORT_JOB,))
    run = make_export_run(alice)
    now = timezone.now()
    export.export_runs(run, {}, now=now)
    record = Export.objects.get(run=run)
    assert record.file_name == f"exports/{run.task_id}.csv"
    assert record.owner == alice
    assert record.expires_at == now + dt.timedelta(hours=24)


def test_the_runs_list_filters_apply(media):
    make_runs(5, state=State.FAILED, source=Source.WEB)
    make_runs(7, state=State.SUCCEEDED)
    make_runs(2, state=State.FAILED, job_name="apps.demo.tasks.countdown")
    filters = {"state": "failed", "job": "apps.demo.tasks.add", "source": "web"}
    result = export.export_runs(make_export_run(make_superuser()), filters)
    assert result["rows"] == 5


def test_the_date_filters_are_whole_days(media):
    today = timezone.localdate()
    make_runs(3, queued_at=timezone.now() - dt.timedelta(days=3))
    make_runs(4, queued_at=timezone.now() - dt.timedelta(days=1))
    yesterday = today - dt.timedelta(days=1)
    filters = {"date_from": yesterday, "date_to": yesterday}
    result = export.export_runs(make_export_run(make_superuser()), filters)
    assert result["rows"] == 4


def test_the_user_filter_matches_who_requested_the_run(media):
    bob = make_user("bob")
    make_runs(2, requested_by=bob)
    make_runs(3)
    result = export.export_runs(make_export_run(make_superuser()), {"user": "bob"})
    assert result["rows"] == 2
    assert {row[5] for row in exported_rows(result, media)[1:]} == {"bob"}


def test_an_export_holds_only_the_runs_its_owner_may_see(media):
    carol = make_user("carol", jobs=(EXPORT_JOB,))
    make_runs(4)  # runs of a job carol may not run, started by others
    make_run("apps.demo.tasks.add", requested_by=carol)
    result = export.export_runs(make_export_run(carol), {})
    jobs = [row[2] for row in exported_rows(result, media)[1:]]
    assert sorted(jobs) == sorted([EXPORT_JOB, "apps.demo.tasks.add"])


def test_the_runs_list_query_applies_whole_parameter_conditions_and_several_states_too(media):
    make_runs(2, state=State.FAILED, parameters={"customer_id": 42})
    make_runs(1, state=State.CANCELLED, parameters={"customer_id": 42})
    make_runs(3, state=State.SUCCEEDED, parameters={"customer_id": 42})
    make_runs(4, state=State.FAILED, parameters={"customer_id": 7})
    filters = {"filters": "state=failed&state=cancelled&param.customer_id=42"}
    result = export.export_runs(make_export_run(make_superuser()), filters)
    assert result["rows"] == 3


def test_invalid_filters_are_refused(media):
    with pytest.raises(ValueError, match="invalid filters"):
        export.export_runs(make_export_run(), {"state": "sleeping"})
    with pytest.raises(ValueError, match=r"invalid filters: param\.1x"):
        export.export_runs(make_export_run(), {"filters": "param.1x=2"})


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted(media):
    make_run(requested_by_label='=HYPERLINK("http://evil")', parameters={"x": 1})
    result = export.export_runs(make_export_run(make_superuser()), {})
    labels = [row[6] for row in exported_rows(result, media)[1:]]
    assert '\'=HYPERLINK("http://evil")' in labels


def test_a_run_stored_with_a_lone_surrogate_is_exported_with_it_replaced(media):
    """SQLite's JSON check let one in before the rule (apps/jobs/json_values.py); every
    export including the run failed with UnicodeEncodeError."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's jsonb never stored one")
    run = make_run()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_run SET parameters = %s WHERE id = %s",
                       ['{"x": "\\ud800"}', run.pk])  # fmt: skip
    result = export.export_runs(make_export_run(make_superuser()), {"job": "apps.demo.tasks.add"})
    rows = exported_rows(result, media)
    assert [row[-1] for row in rows[1:]] == ['{"x": "\ufffd"}']


def test_batches_visit_every_run_once_even_when_queued_at_ties(media):
    same_moment = timezone.now()
    for _ in range(7):
        make_run(queued_at=same_moment)
    make_runs(6, queued_at=same_moment - dt.timedelta(seconds=1))
    path = media / "out.csv"
    count = export.write_csv(path, export.Run.objects.all(), batch_size=3)
    ids = [row[0] for row in read_csv(path.read_text())[1:]]
    assert count == 13 and len(ids) == len(set(ids)) == 13


def test_one_query_per_batch_whatever_the_row_count(media):
    make_runs(25, requested_by=make_user("dave"))
    with CaptureQueriesContext(connection) as queries:
        export.write_csv(media / "out.csv", export.Run.objects.all(), batch_size=10)
    assert len(queries) == 1 + 4  # a count, then batches of 10, 10, 5 and an empty one


def test_no_partial_file_is_left_when_the_export_fails(media, monkeypatch):
    make_runs(5)

    def broken(row):
        raise OSError("disk full")

    monkeypatch.setattr(export, "csv_row", broken)
    with pytest.raises(OSError):
        export.write_csv(media / "exports" / "x.csv", export.Run.objects.all())
    assert list((media / "exports").iterdir()) == []


def test_expired_exports_lose_their_file_but_keep_their_record(media):
    run = make_export_run(make_superuser())
    export.export_runs(run, {}, now=timezone.now() - dt.timedelta(hours=25))
    record = Export.objects.get(run=run)
    assert record.path.exists()
    assert export.remove_expired_exports() == 1
    record.refresh_from_db()
    assert not record.path.exists() and record.removed_at is not None


def test_the_sweep_skips_an_expired_export_whose_name_leaves_the_exports_folder(
    settings, tmp_path, caplog
):
    settings.MEDIA_ROOT = tmp_path / "media"
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("secret")
    root = make_superuser()
    Export.objects.create(run=make_export_run(root), owner=root,
                          file_name="../outside-secret.txt",
                          expires_at=timezone.now() - dt.timedelta(hours=1))  # fmt: skip
    assert export.remove_expired_exports() == 0
    assert outside.read_text() == "secret"
    assert "refused its file name" in caplog.text


def test_an_export_run_whose_task_id_is_not_a_file_name_writes_nothing(media):
    run = make_run(EXPORT_JOB, task_id="../../escaped", requested_by=make_superuser())
    with pytest.raises(ValueError, match="cannot name a file"):
        export.export_runs(run, {})
    assert not (media.parent / "escaped.csv").exists()
    assert not Export.objects.exists()


def test_old_files_without_a_record_are_removed_too(media):
    orphan = media / "exports" / "gone-with-its-run.csv"
    orphan.parent.mkdir()
    orphan.write_text("id\n")
    two_days_ago = (timezone.now() - dt.timedelta(days=2)).timestamp()
    os.utime(orphan, (two_days_ago, two_days_ago))
    fresh = media / "exports" / "fresh.csv"
    fresh.write_text("id\n")
    export.remove_expired_exports()
    assert not orphan.exists() and fresh.exists()


def test_each_export_first_clears_expired_ones(media):
    old = make_export_run(make_superuser())
    export.export_runs(old, {}, now=timezone.now() - dt.timedelta(hours=30))
    export.export_runs(make_export_run(make_superuser("root2")), {})
    assert Export.objects.get(run=old).removed_at is not None
