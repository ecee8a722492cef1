"""Backups in the admin: listed and downloaded by those allowed, nothing else reachable."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/maintenance/backupfile/"


@pytest.fixture
def backups(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path
    (tmp_path / "switchyard-20261127T170000Z.sqlite3").write_bytes(b"older backup")
    (tmp_path / "switchyard-20261128T170000Z.dump").write_bytes(b"newer backup")
    (tmp_path / "notes.txt").write_text("not a backup")
    (tmp_path / ".switchyard-20261129T170000Z.dump.partial").write_bytes(b"half")
    return tmp_path


def download_url(name: str) -> str:
    return reverse("admin:maintenance_backupfile_download", args=[name])


def test_superuser_sees_complete_backups_newest_first(client, backups):
    client.force_login(make_superuser())
    page = client.get(LIST_URL).content.decode()
    assert page.index("20261128T170000Z.dump") < page.index("20261127T170000Z.sqlite3")
    assert "notes.txt" not in page and "partial" not in page


def test_the_admin_index_links_to_the_backups_page(client, backups):
    client.force_login(make_superuser())
    assert LIST_URL in client.get("/admin/").content.decode()


def test_superuser_downloads_a_backup_as_an_attachment(client, backups):
    client.force_login(make_superuser())
    response = client.get(download_url("switchyard-20261128T170000Z.dump"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"newer backup"
    assert "attachment" in response["Content-Disposition"]


def test_staff_without_the_view_permission_is_refused(client, backups):
    client.force_login(make_user("bob", staff=True))
    assert client.get(LIST_URL).status_code == 403
    assert client.get(download_url("switchyard-20261128T170000Z.dump")).status_code == 403


def test_staff_with_the_view_permission_can_download(client, backups):
    carol = make_user("carol", staff=True)
    carol.user_permissions.add(Permission.objects.get(codename="view_backupfile"))
    client.force_login(carol)
    assert client.get(LIST_URL).status_code == 200
    assert client.get(download_url("switchyard-20261128T170000Z.dump")).status_code == 200


def test_a_non_staff_user_is_sent_to_the_login_page(client, backups):
    client.force_login(make_user("dave", staff=False))
    response = client.get(download_url("switchyard-20261128T170000Z.dump"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "name",
    ["notes.txt", ".switchyard-20261129T170000Z.dump.partial", "switchyard-20990101T000000Z.dump",
     "..%2Fsettings.py", "%2E%2E%2F%2E%2E%2Fproject%2Fsettings.py"],
)  # fmt: skip
def test_only_backups_in_the_folder_can_be_downloaded(client, backups, name):
    client.force_login(make_superuser())
    response = client.get(f"{LIST_URL}{name}/download/")
    assert response.status_code == 404


def test_a_path_outside_the_folder_never_matches_the_backup_pattern():
    from apps.maintenance.backup import find_backup

    assert find_backup("../switchyard-20261128T170000Z.dump") is None
    assert find_backup("/etc/passwd") is None
