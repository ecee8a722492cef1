import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def setup_periodic_tasks(sender: Celery, **kwargs) -> None:
    """Celery's periodic-tasks walkthrough; DatabaseScheduler stores these as rows."""
    sender.add_periodic_task(
        60.0, sender.signature("apps.demo.tasks.add", args=(2, 2)), name="run every 1 minute"
    )
    sender.add_periodic_task(
        crontab(hour=7, minute=30, day_of_week=1),
        sender.signature("apps.demo.tasks.add", args=(16, 16)),
        name="add every Monday morning",
    )
