from django.urls import path

from . import views

app_name = "scheduling"
urlpatterns = [
    path("preview/", views.schedule_preview, name="preview"),
    path("parameters/", views.parameters, name="parameters"),
]
