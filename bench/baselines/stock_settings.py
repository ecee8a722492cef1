"""Django settings for stock django-celery-results: Switchyard's settings (database,
broker, Celery options) without Switchyard's apps, result backend or connection reuse.

DJANGO_SETTINGS_MODULE=bench.baselines.stock_settings with bench.baselines.stock_celery.
"""

from project.settings import *  # noqa: F403

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_celery_results"]
CELERY_RESULT_BACKEND = "django-db"
# Stock: Celery's Django fixup closes the database connection around every task.
del CELERY_DB_REUSE_MAX  # noqa: F821
