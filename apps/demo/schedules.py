"""Celery's periodic-tasks walkthrough: two schedules of `add`, declared in code.

Beat's database scheduler stores them as PeriodicTask rows when it starts, so they show
in the admin. They come with this app, hence only where the demo jobs are installed
(DEMO_JOBS, on by default on a laptop): a production beat does not get them.
"""

from celery import current_app
from celery.schedules import crontab


def add_walkthrough_schedules() -> None:
    """Called from DemoConfig.ready(), before any beat reads its schedule (Celery keeps
    them until the app is configured if it is not yet)."""
    app = current_app
    app.add_periodic_task(
        60.0, app.signature("apps.demo.tasks.add", args=(2, 2)), name="run every 1 minute"
    )
    app.add_periodic_task(
        crontab(hour=7, minute=30, day_of_week=1),
        app.signature("apps.demo.tasks.add", args=(16, 16)),
        name="add every Monday morning",
    )
