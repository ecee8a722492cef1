from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The site's own sign-in, for any active user (the admin's login takes staff only).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("api/", include("apps.api.urls")),
    path("schedules/", include("apps.scheduling.urls")),
    path("", include("apps.jobs.urls")),
    path("", include("apps.ops.urls")),  # /, /healthz, /readyz, /metrics
    path("", include("apps.reports.urls")),
    path("", include("apps.control.urls")),
]
