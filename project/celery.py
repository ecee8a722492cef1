import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
# Django's settings (CELERY_*), looked up in a dict: see project/celery_settings.py.
app.config_from_object("project.celery_settings:settings", namespace="CELERY")
app.autodiscover_tasks()
