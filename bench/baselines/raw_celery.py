"""Raw Celery: no Django, results in Redis. The throughput and latency baseline.

Broker and result backend come from the command line (`celery -A ... -b URL
--result-backend URL worker`) or, in a publishing process, from `configure()`. The
Celery settings mirror project/settings.py's, so only the result store differs.
"""

from celery import Celery

app = Celery("raw", include=["bench.baselines.tasks"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    result_extended=True,
    task_track_started=True,
    worker_prefetch_multiplier=1,
    worker_send_task_events=False,
    task_send_sent_event=False,
    broker_connection_retry_on_startup=True,
)


def configure(broker_url: str, result_backend: str) -> Celery:
    app.conf.update(broker_url=broker_url, result_backend=result_backend)
    return app
