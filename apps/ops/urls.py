from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("", views.dashboard_page, name="dashboard"),
    path("dashboard/<slug:name>/", views.dashboard_part, name="part"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
]
