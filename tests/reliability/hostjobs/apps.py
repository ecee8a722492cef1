from django.apps import AppConfig


class HostJobsConfig(AppConfig):
    """The chaos jobs in the catalog of every host (tests/reliability/hosts_settings.py)."""

    name = "tests.reliability.hostjobs"
    label = "hostjobs"

    def ready(self) -> None:
        from tests.reliability import chaos_jobs  # noqa: F401  (registers the jobs)
