from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "apps.ops"

    def ready(self) -> None:
        from apps.jobs import liveness
        from apps.jobs.inspect import workers_answered
        from apps.scheduling.signals import beat_alive

        from . import heartbeat

        beat_alive.connect(heartbeat.beat_alive, dispatch_uid="ops-beat-heartbeat")
        workers_answered.connect(heartbeat.remember_workers, dispatch_uid="ops-workers")
        liveness.provide(heartbeat.last_seen)
