from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class PipelinesConfig(AppConfig):
    name = "apps.pipelines"

    def ready(self) -> None:
        from apps.jobs import catalog, dispatch, page_parts, sweeper

        from . import inputs, page, running

        catalog.fill_arguments_with(inputs.fill)
        if running.cancel not in dispatch.cancellers:
            dispatch.cancellers.append(running.cancel)
        if running.sweep not in sweeper.more_sweeps:
            sweeper.more_sweeps.append(running.sweep)
        page_parts.add("run", page.graph_part)
        page_parts.add("run", page.step_part)
        from . import signals  # noqa: F401  (connects the worker's handlers)

        # Pipelines are declared in each app's pipelines.py, as admin.py for the admin.
        autodiscover_modules("pipelines")
