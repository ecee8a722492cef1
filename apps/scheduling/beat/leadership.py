"""Leadership: every beat ticks, only the holder of the Redis lease (lease.py) sends.

A new leader starts from the run times in the database (the last leader's), and looks
up the runs the last leader may have sent before it died (sending.py).

The lease is fenced: taking over raises a token in the database (LeaderFence), and
every send happens in a transaction that first finds this beat's token still the
latest. A leader that passed its lease check and then stalled (cut off from Redis, a
long pause, a slow query) while a newer one took over sends nothing when it resumes:
the check is made at send time, not at the last lease renewal."""

import logging
import time
from datetime import timedelta

from django.db import transaction
from django_celery_beat.models import PeriodicTask

from ..lease import Lease, beat_lease
from ..models import LeaderFence

log = logging.getLogger("apps.scheduling.schedulers")
FENCE = "beat"


class Superseded(Exception):
    """A newer beat took the lead while this one stalled."""


class Leadership:
    _token = 0  # this beat's fence token, from its last takeover

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
        self._token = LeaderFence.next_token(FENCE)
        log.info("beat: leader now (%s, fence token %d)", self.lease.owner, self._token)
        self._look_up_until = time.time() + self.lease.ttl  # allows for clock skew
        rows = PeriodicTask.objects.filter(enabled=True).values_list(
            "name", "last_run_at", "total_run_count", "date_changed", "start_time"
        )
        for name, last_run_at, count, date_changed, start_time in rows.iterator(2000):
            entry = self._entries.get(name)
            if entry is not None:
                _set_run_time(entry, last_run_at, count, date_changed, start_time)
        self._rebuild_heap()

    def _fenced(self) -> None:
        """Call in the transaction that sends: raises Superseded unless no newer beat
        has taken over since this one did."""
        if not LeaderFence.holds(FENCE, self._token):
            raise Superseded

    def _check_fence(self) -> None:
        with transaction.atomic():
            self._fenced()

    def _stand_down(self) -> None:
        log.warning("beat: a newer leader took over while this one stalled; standing by")
        self._leading = False
        self.lease.valid_until = 0.0
        self._unsaved.clear()  # the new leader owns the run times now


def _set_run_time(entry, last_run_at, count, date_changed, start_time) -> None:
    """As ModelEntry.__init__ does: no last run yet means "since it was last saved"."""
    if last_run_at is None:
        last_run_at = date_changed
        if start_time:
            last_run_at -= timedelta(days=365 * 30)
    entry.model.last_run_at = entry.last_run_at = last_run_at
    entry.model.total_run_count = entry.total_run_count = count
