import logging
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

log = logging.getLogger(__name__)

EXPORT_FOLDER = "exports"  # under MEDIA_ROOT
_NOT_IN_A_NAME = ("/", "\\", "\x00")


class Export(models.Model):
    """A CSV file written by an export run: whose it is and until when it may be fetched.

    The file lives under MEDIA_ROOT (`file_name` is relative to it). The row outlives
    the file, so a late download gets "expired" rather than "not found".
    """

    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="export")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    file_name = models.CharField(max_length=255)
    rows = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.file_name

    @property
    def path(self) -> Path | None:
        """The file under MEDIA_ROOT/exports, or None (logged) when the stored name is
        not `exports/<a plain file name>`: nothing outside that folder is read or
        deleted for a row, whatever it holds."""
        folder, _, name = self.file_name.partition("/")
        plain = name not in ("", ".", "..") and not any(c in name for c in _NOT_IN_A_NAME)
        if folder != EXPORT_FOLDER or not plain:
            log.warning("export %s: refused its file name %r (not a file in %s/)",
                        self.pk, self.file_name, EXPORT_FOLDER)  # fmt: skip
            return None
        return Path(settings.MEDIA_ROOT) / EXPORT_FOLDER / name

    def is_expired(self, now=None) -> bool:
        return self.removed_at is not None or self.expires_at <= (now or timezone.now())

    def may_download(self, user) -> bool:
        """Only the user who started the export, and superusers."""
        if not user.is_active:
            return False
        return user.is_superuser or (self.owner_id is not None and self.owner_id == user.pk)
