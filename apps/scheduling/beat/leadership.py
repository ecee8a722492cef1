"""Leadership: every beat ticks, only the holder of the Redis lease (lease.py) sends.

A new leader starts from the run times in the database (the last leader's), and looks
up the runs the last leader may have sent before it died (sending.py)."""

import logging
import time
from datetime import timedelta

from django_celery_beat.models import PeriodicTask

from ..lease import Lease, beat_lease

log = logging.getLogger("apps.scheduling.schedulers")


class Leadership:
    @property
    def lease(self) -> Lease:
        if self._lease is None:
            self._lease = beat_lease()
        return self._lease

    def _lead(self) -> bool:
        now = time.monotonic()
        if now - self._last_renewal >= self.lease.renew_every or not self.lease.valid:
            self._last_renewal = now
            held = self.lease.hold()
            if held and not self._leading:
                self._take_over()
            elif self._leading and not held:
                log.warning("beat: lost the leader lease; standing by")
                self._unsaved.clear()  # the new leader owns the run times now
            self._leading = held
        return self._leading and self.lease.valid

    def _take_over(self) -> None:
        """Start from the run times in the database: the last leader's, not ours."""
        log.info("beat: leader now (%s)", self.lease.owner)
        self._look_up_until = time.time() + self.lease.ttl  # allows for clock skew
        rows = PeriodicTask.objects.filter(enabled=True).values_list(
            "name", "last_run_at", "total_run_count", "date_changed", "start_time"
        )
        for name, last_run_at, count, date_changed, start_time in rows.iterator(2000):
            entry = self._entries.get(name)
            if entry is not None:
                _set_run_time(entry, last_run_at, count, date_changed, start_time)
        self._rebuild_heap()


def _set_run_time(entry, last_run_at, count, date_changed, start_time) -> None:
    """As ModelEntry.__init__ does: no last run yet means "since it was last saved"."""
    if last_run_at is None:
        last_run_at = date_changed
        if start_time:
            last_run_at -= timedelta(days=365 * 30)
    entry.model.last_run_at = entry.last_run_at = last_run_at
    entry.model.total_run_count = entry.total_run_count = count
