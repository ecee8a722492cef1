from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "apps.control"
    verbose_name = "Queue and worker control"

    def ready(self) -> None:
        from celery import current_app

        from apps.jobs import packs, page_parts

        from . import page_parts as ours
        from . import rules, worker

        current_app.steps["worker"].add(worker.StoredControls)
        current_app.steps["consumer"].add(worker.Resync)
        page_parts.add("job", ours.rate_limit_form)
        if rules.rate_limit_refuses_packing not in packs.refusers:
            packs.refusers.append(rules.rate_limit_refuses_packing)
