from django.apps import AppConfig


class DjtasksConfig(AppConfig):
    name = "apps.djtasks"
    verbose_name = "Django Tasks API on Celery"
