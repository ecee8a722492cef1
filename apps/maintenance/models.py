from django.db import models


class BackupFile(models.Model):
    """No table: gives the admin a "Database backups" page and its view permission.

    The backups themselves are files in settings.BACKUP_DIR (see backup.py).
    """

    name = models.CharField(max_length=100, primary_key=True)

    class Meta:
        managed = False
        db_table = "maintenance_backupfile_no_table"
        verbose_name = "database backup"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return self.name
