"""A job with a secret parameter, for the tests of apps/jobs/secrets.py.

Registered when a test module imports it (at collection, before the session's worker
starts, so the worker knows it too).
"""

import hashlib
import logging

from apps.jobs.catalog import job
from apps.jobs.params import Secret
from apps.jobs.progress import report_progress

log = logging.getLogger(__name__)

SECRET = "s3cr3t-VALUE-4242"
NAME = "tests.jobs.secret_job.use_secret"


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@job(title="Use a secret")
def use_secret(token: Secret[str], label: str = "plain", leak: str = "no") -> str:
    """Proves it got the token (its fingerprint) and, on request, tries to leak it."""
    log.warning("use_secret got token %s for %s", token, label)
    report_progress(1, 2, f"checking {token}")
    if leak == "raise":
        raise ValueError(f"the service refused token {token!r}")
    if leak == "return":
        return f"token was {token}"
    return f"fingerprint {fingerprint(token)}"
