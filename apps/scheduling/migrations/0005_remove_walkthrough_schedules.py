"""The walkthrough's two periodic tasks used to come from project/celery.py, so every
beat, production's too, stored them as rows. They now come with apps.demo (DEMO_JOBS):
remove the stored copies once. Where apps.demo is installed, beat stores them again when
it starts; elsewhere they are gone, instead of sending a task no worker knows every
minute. Only rows with exactly the walkthrough's name and task are touched."""

from django.db import migrations
from django.utils import timezone

WALKTHROUGH = ["run every 1 minute", "add every Monday morning"]


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    stored = PeriodicTask.objects.filter(name__in=WALKTHROUGH, task="apps.demo.tasks.add")
    if stored.exists():
        stored.delete()
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0004_options_related_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(remove, migrations.RunPython.noop)]
