import pytest
from django.core.cache import cache

from tests.browser_fixtures import *  # noqa: F403


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Broker snapshots and chart data are cached for seconds; tests start clean."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ADMINS = [("Ops", "ops@example.com")]
    from django.core import mail as outbox

    outbox.outbox = []
    return outbox
