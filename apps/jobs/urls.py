from django.urls import path

from . import views

app_name = "jobs"
urlpatterns = [
    path("jobs/", views.catalog, name="catalog"),
    path("jobs/<str:name>/", views.job_form, name="job"),
    path("runs/", views.run_list, name="runs"),
    path("runs/bulk/", views.runs_bulk, name="runs_bulk"),
    path("runs/failed/", views.runs_failed, name="runs_failed"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<int:pk>/rerun/", views.run_again, name="rerun"),
    path("runs/<int:pk>/resend/", views.run_resend, name="resend"),
]
