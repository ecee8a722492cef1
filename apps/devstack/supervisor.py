"""Keep the laptop stack's processes running (`manage.py devstack`).

A process that exits, crashed or killed, is started again after a back-off: 1 s, then
doubling up to 30 s while it keeps failing soon after each start, so one that fails at
once costs a start every 30 s, not a busy loop. Each exit gets a line saying which
process, how it ended and when it comes back. Stopping (Ctrl-C, SIGTERM) stops them all,
the ones the others need (the embedded Redis) only once the others have exited.
"""

import datetime as dt
import signal
import subprocess
import time
from collections.abc import Callable

from apps.devstack import processes

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# A process that stayed up this long was healthy: after its next exit, FIRST_DELAY again.
HEALTHY_AFTER = 60.0
TICK = 0.2  # seconds between looks at the processes


def next_delay(previous: float | None, uptime: float) -> float:
    """Seconds to wait before starting again a process that ran `uptime` seconds."""
    if previous is None or uptime >= HEALTHY_AFTER:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)


def describe_exit(status: int) -> str:
    if status >= 0:
        return f"exited with status {status}"
    try:
        return f"was killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"was killed by signal {-status}"


class Child:
    """One process of the stack, started again with back-off whenever it exits."""

    def __init__(self, name: str, command: list[str], say: Callable[[str], None],
                 needed_by_others: bool = False) -> None:  # fmt: skip
        self.name = name
        self.command = command
        self.say = say
        # The others talk to it (the broker): stopped only after they have exited.
        self.needed_by_others = needed_by_others
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.delay: float | None = None
        self.restart_at = 0.0

    def start(self) -> None:
        self.process = processes.spawn(self.command)
        self.started_at = time.monotonic()

    def tend(self) -> None:
        """Notice an exit and set a restart time, or restart once that time has come."""
        if self.process is None:
            if time.monotonic() >= self.restart_at:
                self.start()
                self.say(f"{self.name} started again (pid {self.process.pid}).")
            return
        status = self.process.poll()
        if status is not None:
            self.exited(status)

    def exited(self, status: int) -> None:
        dead, self.process = self.process, None
        processes.stop_all([dead])  # whatever it left in its process group (pool workers)
        uptime = time.monotonic() - self.started_at
        self.delay = next_delay(self.delay, uptime)
        self.restart_at = time.monotonic() + self.delay
        at = (dt.datetime.now() + dt.timedelta(seconds=self.delay)).strftime("%H:%M:%S")
        self.say(
            f"{self.name} (pid {dead.pid}) {describe_exit(status)} after {uptime:.1f} s; "
            f"starting it again in {self.delay:g} s (at {at})."
        )


def watch(children: list[Child], stopping: Callable[[], bool]) -> None:
    """Tend the children until `stopping()` says so; stop_children() then ends them."""
    while not stopping():
        for child in children:
            child.tend()
        time.sleep(TICK)


def stop_children(children: list[Child]) -> None:
    """Stop the children in dependency order: SIGTERM the process groups of those nothing
    needs (warm shutdown) and wait for them to exit (SIGKILL after stop_all's timeout),
    then the same for those they needed. A worker stopping with Redis gone would drop
    what it had not yet acknowledged."""
    for needed in (False, True):
        stage = [child for child in children if child.needed_by_others == needed]
        processes.stop_all([child.process for child in stage if child.process is not None])
        for child in stage:
            child.process = None
