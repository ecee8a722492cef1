"""What beat announces, for the apps above it (apps.ops records it as beat's heartbeat)."""

from django.dispatch import Signal

# Sent by every beat process every few seconds while it ticks: leader= the lease owner.
beat_alive = Signal()
