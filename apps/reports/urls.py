from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("runs/export", views.start_export, name="export_runs"),
    path("exports/<int:run_id>/download", views.download_export, name="download_export"),
]
