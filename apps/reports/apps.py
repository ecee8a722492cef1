from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"

    def ready(self) -> None:
        from apps.jobs import page_parts

        from . import page_parts as ours

        page_parts.add("runs", ours.export_button)
        page_parts.add("run", ours.export_download_link)
