"""A Tasks API task with a secret parameter, for tests/djtasks/test_secrets.py.

Declared (and so registered as a Celery task and a catalog job) when a test module
imports it, at collection: before the session's worker starts, so the worker knows it.
"""

from django_tasks import task

from apps.jobs.params import Secret
from tests.jobs.secret_job import fingerprint

TOKEN = "tok-CLEAR-positional"


@task()
def sync_crm(account: str, token: Secret[str]) -> str:
    """Proves it got the token: its fingerprint, never the token itself."""
    return f"{account}: fingerprint {fingerprint(token)}"
