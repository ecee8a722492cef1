"""A write to Redis whose sender gave up on it is dropped, never delivered later.

redis-py gives up on a connection (a reply that did not come within `socket_timeout`,
a send that failed) by closing its socket. A normal close does not drop what the kernel
still holds for the peer: bytes written but not acknowledged stay queued, and the kernel
keeps retransmitting them, then a FIN, for a minute and more after the process has
forgotten them. If the link comes back in that time, Redis gets the write after all,
although its sender was told it failed. For a publish that means a second copy of the
message: its run was set back to "waiting to be sent", and the sweeper has sent it again
meanwhile (issue 14, scenario 3: a beat leader cut off from Redis mid-publish; so for
any publisher, web, beat or worker, and for a lease renewal or a BRPOP as well).

Here a connection closed while the kernel still holds bytes that Redis has not
acknowledged (`SIOCOUTQ`, Linux) is closed with `SO_LINGER` 0: the kernel drops them
and resets the connection instead. A connection closed with nothing outstanding (every
close of a healthy connection, whose replies were read) closes as before. So that a
process that dies (killed while cut off, say) drops them too, every TCP connection is
opened with `SO_LINGER` 0, which the close in good order turns off again. Nothing
changes on the publish path: one setsockopt per connection opened, an ioctl and a
setsockopt per connection closed, none per command.

What this cannot undo: bytes Redis's host had acknowledged before the cut (a reply lost
on the way back) were delivered, not delayed; the run is sent again and a worker skips
the copy that comes second once the run has finished.
"""

import contextlib
import fcntl
import logging
import os
import socket
import struct
import termios

from redis.connection import AbstractConnection, Connection

log = logging.getLogger(__name__)

_TCP = (socket.AF_INET, socket.AF_INET6)
_OUTQ = getattr(termios, "TIOCOUTQ", None)  # SIOCOUTQ: sent or not, unacknowledged
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s
_ORDERLY_CLOSE = struct.pack("ii", 0, 0)  # SO_LINGER off: the default


def unacknowledged_bytes(sock: socket.socket) -> int:
    """Bytes written to a TCP socket that its peer has not acknowledged (0 where the
    kernel cannot say)."""
    if _OUTQ is None or sock.family not in _TCP:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, bytes(4)))[0]
    except (OSError, ValueError):
        return 0


def _linger(sock: socket.socket, value: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, value)


def reset_if_unacknowledged(sock: socket.socket) -> int:
    """Close `sock` with a reset if its peer has not acknowledged all that was written
    to it: the kernel drops those bytes. How many there were (0: left open, to close
    in good order)."""
    pending = unacknowledged_bytes(sock)
    if pending:
        _linger(sock, _RESET_ON_CLOSE)
        sock.close()  # before redis-py's shutdown() could queue a FIN behind those bytes
    elif sock.family in _TCP:
        _linger(sock, _ORDERLY_CLOSE)
    return pending


_connect = Connection._connect
_disconnect = AbstractConnection.disconnect


def _disconnect_dropping_unacknowledged(self, *args, **kwargs):
    sock = self._sock
    # A forked child shares the parent's socket: only its owner may reset it.
    if sock is not None and os.getpid() == self.pid:
        dropped = reset_if_unacknowledged(sock)
        if dropped:
            where = f"{getattr(self, 'host', '?')}:{getattr(self, 'port', '?')}"
            log.warning("redis: reset the connection to %s, dropping %d bytes it never "
                        "acknowledged", where, dropped)  # fmt: skip
    return _disconnect(self, *args, **kwargs)


def _connect_reset_if_abandoned(self):
    """Opened to be reset if the process ends without closing it (killed, say)."""
    sock = _connect(self)
    if sock.family in _TCP:
        _linger(sock, _RESET_ON_CLOSE)
    return sock


def install() -> None:
    """Every redis-py connection (broker, lease, locks) opens and closes this way;
    idempotent."""
    if AbstractConnection.disconnect is not _disconnect_dropping_unacknowledged:
        AbstractConnection.disconnect = _disconnect_dropping_unacknowledged
    if Connection._connect is not _connect_reset_if_abandoned:
        Connection._connect = _connect_reset_if_abandoned
