"""Stock django-celery-results with Celery's own connection reuse (CELERY_DB_REUSE_MAX)."""

from .stock_settings import *  # noqa: F403

CELERY_DB_REUSE_MAX = 1000
