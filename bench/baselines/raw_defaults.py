"""Raw Celery with Celery's defaults: no Django, results in Redis, and none of the
settings Switchyard turns on (no STARTED state, no extended results,
prefetch 4). The kind of baseline quoted in STACK-NOTES; the throughput benchmark's
second reference beside the like-for-like raw_celery.
"""

from celery import Celery

app = Celery("raw-defaults", include=["bench.baselines.tasks"])


def configure(broker_url: str, result_backend: str) -> Celery:
    app.conf.update(broker_url=broker_url, result_backend=result_backend)
    return app
