"""django-auditlog's own migrations create its stock table even when its entry model is
swapped for ours (AUDITLOG_LOGENTRY_MODEL = "audit.AuditEntry"). Nothing writes to it, and
its foreign keys to auth_user and django_content_type, on a table Django no longer knows,
stop a flush (TRUNCATE) of those tables on PostgreSQL. On upgrading django-auditlog, check
that no new migration of its own alters that table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS auditlog_logentry", migrations.RunSQL.noop),
    ]
