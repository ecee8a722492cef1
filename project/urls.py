from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("schedules/", include("apps.scheduling.urls")),
    path("", include("apps.jobs.urls")),
    path("", include("apps.ops.urls")),  # /, /healthz, /readyz, /metrics
    path("", include("apps.reports.urls")),
    path("", include("apps.control.urls")),
]
