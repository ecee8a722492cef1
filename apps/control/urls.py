from django.urls import path

from . import views

app_name = "control"
urlpatterns = [
    # Queue names are Celery's and may hold "/": the action is the last segment.
    path("control/queues/<path:queue>/pause", views.pause, name="pause"),
    path("control/queues/<path:queue>/resume", views.resume, name="resume"),
    path("control/queues/<path:queue>/purge", views.purge, name="purge"),
    path("control/workers/<path:worker>/", views.worker_page, name="worker"),
    path("control/workers/<path:worker>/<slug:action>", views.worker_action, name="worker-action"),
    path("control/jobs/<str:name>/rate-limit", views.rate_limit, name="rate-limit"),
    path("control/jobs/<str:name>/rate-total", views.rate_total, name="rate-total"),
]
