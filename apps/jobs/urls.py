from django.urls import path

from . import (
    converters,  # noqa: F401  (registers <id:...>)
    views,
)

app_name = "jobs"
urlpatterns = [
    path("jobs/", views.catalog, name="catalog"),
    path("jobs/<str:name>/", views.job_form, name="job"),
    path("runs/", views.run_list, name="runs"),
    path("runs/bulk/", views.runs_bulk, name="runs_bulk"),
    path("runs/failed/", views.runs_failed, name="runs_failed"),
    path("runs/<id:pk>/", views.run_detail, name="run"),
    path("runs/<id:pk>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<id:pk>/rerun/", views.run_again, name="rerun"),
    path("runs/<id:pk>/resend/", views.run_resend, name="resend"),
]
