"""Django's settings as Celery reads them: a dict, built when Celery first looks.

Celery asks for each setting under several names (`CELERY_TASK_ALWAYS_EAGER`, then
`task_always_eager`, then the old-style names), in its own changes, then in the
configuration source, then in its defaults. On Django's settings object every name it
lacks raises (and Celery catches) an AttributeError: 15-25 us for each setting the
project leaves at Celery's default, seven such lookups in every `.delay()` (issue 15:
about 0.09 ms of an enqueue, a tenth of raw Celery's whole `.delay()`). A dict answers
the same in about 5 us.

The values are Django's (every upper-case setting), read once per process, as Celery
already did: it keeps the settings object it was given, so `override_settings` never
reached it either.
"""

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any


class DjangoSettings(Mapping):
    @cached_property
    def _values(self) -> dict[str, Any]:
        from django.conf import settings

        return {name: getattr(settings, name) for name in dir(settings) if name.isupper()}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


settings = DjangoSettings()
