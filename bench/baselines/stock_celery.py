"""The Celery app for stock django-celery-results (settings: bench.baselines.stock_settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baselines.stock_settings")

app = Celery("stock", include=["bench.baselines.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
