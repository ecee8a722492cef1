"""Database backups in the admin: a list and downloads, for staff allowed to view them.

Superusers, and staff given "Can view database backup", see the page. A backup holds
the whole database (password hashes included), so the permission is not implied by
staff status alone.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path

from . import backup
from .models import BackupFile


@admin.register(BackupFile)
class BackupFileAdmin(admin.ModelAdmin):
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="maintenance_backupfile_changelist"),
            path("<str:name>/download/", wrap(self.download_view),
                 name="maintenance_backupfile_download"),
        ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        self._require_view(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Database backups",
            "backups": backup.list_backups(),
            "folder": backup.backup_dir(),
        }
        return TemplateResponse(request, "maintenance/backups.html", context)

    def download_view(self, request: HttpRequest, name: str) -> FileResponse:
        self._require_view(request)
        found = backup.find_backup(name)
        if found is None:
            raise Http404("No such backup.")
        return FileResponse(found.path.open("rb"), as_attachment=True, filename=found.name)

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied
