"""What the audit log watches: schedules and their rows and options, API tokens, and who
holds which permission (a job's permission is `jobs.run_<job>`, given to a user or a
group: apps/jobs/permissions.py). Registered by label, so this app imports none of them.
"""

from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth import get_user_model

BEAT_ROWS = ("IntervalSchedule", "CrontabSchedule", "SolarSchedule", "ClockedSchedule")
# Beat writes these on every run; they are not changes anyone made.
BEAT_BOOKKEEPING = ["last_run_at", "total_run_count", "date_changed"]


def register_models() -> None:
    for task_model in (apps.get_model("django_celery_beat", "PeriodicTask"),
                       apps.get_model("scheduling", "Schedule")):  # fmt: skip
        auditlog.register(
            task_model, exclude_fields=BEAT_BOOKKEEPING, mask_fields=["kwargs"],
            mask_callable="apps.audit.masking.masked_kwargs",
        )  # fmt: skip
    for name in BEAT_ROWS:
        auditlog.register(apps.get_model("django_celery_beat", name))
    auditlog.register(apps.get_model("scheduling", "ScheduleOptions"))
    auditlog.register(apps.get_model("api", "ApiToken"),
                      exclude_fields=["hashed_secret", "last_used_at"])  # fmt: skip
    who = ["username", "is_active", "is_staff", "is_superuser"]
    auditlog.register(get_user_model(), m2m_fields={"user_permissions", "groups"},
                      include_fields=who)  # fmt: skip
    auditlog.register(apps.get_model("auth", "Group"), m2m_fields={"permissions"},
                      include_fields=["name"])  # fmt: skip
