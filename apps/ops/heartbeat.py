from datetime import timedelta

from django.utils import timezone

from .models import Heartbeat


def record(name: str, **detail) -> None:
    Heartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": timezone.now(), "detail": detail}
    )


def age(name: str) -> timedelta | None:
    seen = Heartbeat.objects.filter(name=name).values_list("seen_at", flat=True).first()
    return timezone.now() - seen if seen else None
