"""Django's PostgreSQL backend, with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django checks a reused connection before the first query of
each request (and of each task: apps.jobs.worker.connections) by sending `SELECT 1` and
waiting for the answer. That is one round trip on every API call and every page (an
API call makes four: the check, the token, the run's INSERT, the publish) and on every
task, and one PostgreSQL transaction each: measured, an API call went from 2.9 to 1.9
transactions, though no latency measured on the benchmarks' machine shows the
difference (docs/performance.md, "Mixed load").

A server that ends a session says so on the socket: a restart or shutdown, a crash
(the kernel closes the dead process's sockets), `pg_terminate_backend`, an idle
timeout, all send an error and close the connection, which leaves the client's socket
readable. So a connection that is idle (no transaction open) and has nothing waiting on
its socket is used as it is: one poll() system call instead of a round trip. Anything
else (data waiting, a transaction open, a socket that cannot be polled) is checked as
Django does, with `SELECT 1`.

What the poll cannot see, the round trip could not either: a server that vanished
without a word (a host gone, a network cut) leaves the socket quiet, and `SELECT 1`
would wait on it as long as the request's own query does. Connections are closed after
CONN_MAX_AGE (60 s) anyway.
"""

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is not None and quiet(self.connection):
            return True
        return super().is_usable()


def quiet(connection) -> bool:
    """`connection` (psycopg's) is open and idle, and the server has sent nothing since
    its last answer."""
    try:
        if connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
            return False
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError, base.Database.Error):
        return False
