"""What the benchmarks compare Switchyard with, and the task they all run.

- raw_celery: a bare Celery app (no Django) with Redis as its result backend;
- stock_settings / stock_celery: Celery with stock django-celery-results (django-db),
  no Switchyard apps, on the same PostgreSQL tables;
- tasks: the no-op task every worker in a benchmark runs;
- fill: publishes N of those tasks from a separate process, as a caller would.
"""
