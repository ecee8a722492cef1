"""What happens in the worker: the result backend, connection reuse, the run-recording
signals and the event loop's timer pruning. apps.jobs' AppConfig connects them."""
