"""Settings of the services in the hosts scenarios (DJANGO_SETTINGS_MODULE in their
environment): production's own, plus the chaos jobs, so the web host's API accepts them
and the worker hosts run them."""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.reliability.hostjobs"]
