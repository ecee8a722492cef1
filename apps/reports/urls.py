from django.urls import path

from apps.jobs import converters  # noqa: F401  (registers <id:...>)

from . import views

app_name = "reports"
urlpatterns = [
    path("runs/export", views.start_export, name="export_runs"),
    path("exports/<id:run_id>/download", views.download_export, name="download_export"),
]
