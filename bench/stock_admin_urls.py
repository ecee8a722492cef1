"""The site's URLs plus django-celery-results' own TaskResultAdmin on a second AdminSite
at /stock-admin/, so bench.admin_pages can time stock and Switchyard side by side."""

from django.contrib.admin import AdminSite
from django.urls import path
from django_celery_results.admin import TaskResultAdmin
from django_celery_results.models import TaskResult

from project.urls import urlpatterns as site_urlpatterns

stock_site = AdminSite(name="stock")
stock_site.register(TaskResult, TaskResultAdmin)

urlpatterns = [path("stock-admin/", stock_site.urls), *site_urlpatterns]
