from django.apps import AppConfig


class TasksApiDemoConfig(AppConfig):
    name = "apps.demo.tasks_api"
    label = "demo_tasks_api"
    verbose_name = "Demo: Django Tasks API"
