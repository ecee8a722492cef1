from django.apps import AppConfig


class DevstackConfig(AppConfig):
    name = "apps.devstack"
    verbose_name = "Development stack"
