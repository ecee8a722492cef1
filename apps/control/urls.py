from django.urls import path

from . import views

app_name = "control"
urlpatterns = [
    path("control/queues/<str:queue>/pause", views.pause, name="pause"),
    path("control/queues/<str:queue>/resume", views.resume, name="resume"),
    path("control/queues/<str:queue>/purge", views.purge, name="purge"),
    path("control/workers/<str:worker>/", views.worker_page, name="worker"),
    path("control/workers/<str:worker>/<slug:action>", views.worker_action, name="worker-action"),
    path("control/jobs/<str:name>/rate-limit", views.rate_limit, name="rate-limit"),
    path("control/jobs/<str:name>/rate-total", views.rate_total, name="rate-total"),
]
