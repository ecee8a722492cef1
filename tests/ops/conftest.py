import pytest

from tests.browser_fixtures import *  # noqa: F403


@pytest.fixture
def mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ADMINS = [("Ops", "ops@example.com")]
    from django.core import mail as outbox

    outbox.outbox = []
    return outbox
