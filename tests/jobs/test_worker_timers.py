"""The worker's event loop drops cancelled time-limit timers instead of keeping them."""

from kombu.asynchronous.timer import Timer

from apps.jobs.worker.timers import prune_cancelled


def make_timer(delays: list[float]) -> tuple[Timer, list]:
    timer = Timer()
    return timer, [timer.call_after(delay, print) for delay in delays]


def test_pruning_drops_the_cancelled_timers_and_keeps_the_rest():
    timer, entries = make_timer([30, 10, 20, 40])
    entries[0].cancel()
    entries[2].cancel()
    assert prune_cancelled(timer) == 2
    assert [item.entry for item in timer.queue] == [entries[1], entries[3]]


def test_the_timers_left_still_come_out_soonest_first():
    timer, entries = make_timer([50, 40, 30, 20, 10, 5])
    for entry in entries[1::2]:
        entry.cancel()
    prune_cancelled(timer)
    assert [item.eta for item in timer.queue] == sorted(item.eta for item in timer.queue)
    assert len(timer) == 3


def test_pruning_a_timer_with_nothing_cancelled_changes_nothing():
    timer, _ = make_timer([3, 1, 2])
    assert prune_cancelled(timer) == 0
    assert len(timer) == 3
