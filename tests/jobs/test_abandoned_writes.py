"""apps.jobs.abandoned_writes: a publish whose sender gave up on it (Redis did not
acknowledge it in time) never reaches Redis later, when the link comes back; a
connection closed in good health closes as before."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import yaml
from kombu import Connection
from kombu.exceptions import BatchPublishError

from switchyard_dev.hosts import DEAD_GATEWAY, ROOT, Topology, skip_reason

REDIS_ONLY = {"services": {"redis": {"image": "redis:7", "command": ["redis-server"]}}}
TIME_WAIT, FIN_WAIT = "06", {"04", "05"}  # /proc/net/tcp's states


def tcp_rows() -> list[list[str]]:
    return [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]


def proc_address(address: str, port: int) -> str:
    """How /proc/net/tcp writes an IPv4 address and port."""
    return f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"


def unacknowledged_to(address: str, port: int) -> int:
    """Bytes this network namespace's kernel still holds for (address, port) that the
    peer has not acknowledged, on every socket, closed ones included (tx_queue)."""
    remote = proc_address(address, port)
    return sum(int(row[4].split(":")[0], 16) for row in tcp_rows() if row[2] == remote)


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def redis_host(tmp_path):
    """A Redis on a host of its own (a network namespace, switchyard_dev/hosts.py) whose
    link the test can cut: packets dropped, as on a real network, not refused."""
    reason = skip_reason()
    if reason:
        pytest.skip(f"hosts: {reason}")
    compose = tmp_path / "compose.yml"
    compose.write_text(yaml.safe_dump(REDIS_ONLY))
    with Topology({}, workers=0, beats=0, compose_file=compose, flower=False) as topo:
        topo.up(timeout=30)
        yield topo


@contextlib.contextmanager
def cut_off_from_here(topo: Topology, name: str):
    """Packets between this test process (on the bridge) and the host silently dropped,
    both ways, as `topo.partition(name, peer)` does between two hosts: routed through an
    on-link address nobody has. (Not the host's link down: the kernel would hold the
    packets sent meanwhile below TCP while it asks for the address, and send them when
    the link is back; a cut beyond the host's own link holds nothing.)"""
    host, dead = topo.hosts[name], f"{topo.subnet}.{DEAD_GATEWAY}"
    sides = [(["ip"], host.address), (["ip", "-n", host.namespace], f"{topo.subnet}.1")]
    try:
        for ip, other in sides:
            subprocess.run([*ip, "route", "replace", f"{other}/32", "via", dead], check=True)
        yield
    finally:
        for ip, other in sides:
            subprocess.run([*ip, "route", "del", f"{other}/32"], capture_output=True)


@pytest.mark.once
@pytest.mark.hosts
def test_a_publish_redis_never_acknowledged_does_not_reach_it_when_the_link_comes_back(
    redis_host,
):
    """Beat's and a transaction's way of publishing (a batch, one pipeline); a plain
    publish ends in the same redis-py connection. Before the fix the kernel kept the
    abandoned LPUSH and delivered it once the link was back: two messages."""
    address, queue = redis_host.address("redis"), f"cut-{uuid.uuid4().hex[:8]}"
    options = {"socket_timeout": 1, "socket_connect_timeout": 1}
    with Connection(redis_host.broker_url(), transport_options=options) as connection:
        producer = connection.Producer()
        producer.publish({"n": 1}, routing_key=queue, declare=[], retry=False)
        with (
            cut_off_from_here(redis_host, "redis"),
            pytest.raises(BatchPublishError),
            producer.batch(max_size=10),
        ):
            producer.publish({"n": 2}, routing_key=queue, declare=[], retry=False)

        # Delivered late, or dropped: either way the kernel holds nothing more for Redis.
        assert wait_for(lambda: unacknowledged_to(address, 6379) == 0, timeout=30)
    client = redis.Redis.from_url(redis_host.broker_url())
    bodies = [json.loads(raw)["body"] for raw in client.lrange(queue, 0, -1)]
    assert len(bodies) == 1, bodies


# A publisher as web, beat and workers are (Django set up): it publishes once, then,
# when told, again into a link the test has cut, and waits for the reply until killed.
PUBLISH_THEN_WAIT = """
import sys
import django
from kombu import Connection
django.setup()
with Connection(sys.argv[1], transport_options={"socket_timeout": 120}) as connection:
    producer = connection.Producer()
    producer.publish({"n": 1}, routing_key=sys.argv[2], declare=[], retry=False)
    print("published", flush=True)
    sys.stdin.readline()
    producer.publish({"n": 2}, routing_key=sys.argv[2], declare=[], retry=False)
"""


@pytest.mark.once
@pytest.mark.hosts
def test_a_publisher_killed_while_cut_off_leaves_nothing_to_reach_redis_later(redis_host):
    address, queue = redis_host.address("redis"), f"killed-{uuid.uuid4().hex[:8]}"
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISH_THEN_WAIT, redis_host.broker_url(), queue],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert publisher.stdout.readline() == "published\n"
        with cut_off_from_here(redis_host, "redis"):
            publisher.stdin.write("\n")
            publisher.stdin.flush()
            assert wait_for(lambda: unacknowledged_to(address, 6379) > 0, timeout=30)
            publisher.send_signal(signal.SIGKILL)
            publisher.wait(timeout=30)

        assert wait_for(lambda: unacknowledged_to(address, 6379) == 0, timeout=30)
    finally:
        publisher.kill()
        publisher.wait()
    client = redis.Redis.from_url(redis_host.broker_url())
    bodies = [json.loads(raw)["body"] for raw in client.lrange(queue, 0, -1)]
    assert len(bodies) == 1, bodies


@pytest.mark.once
def test_a_connection_closed_after_its_replies_were_read_ends_in_an_orderly_close(redis_url):
    """Not reset: the close is redis-py's own (a FIN each way; the closing side waits in
    TIME_WAIT), as on every healthy connection."""
    client = redis.Redis.from_url(redis_url)
    client.ping()
    connection = client.connection_pool.get_connection()
    connection.send_command("PING")
    assert connection.read_response() in (b"PONG", "PONG")
    local = proc_address(*connection._sock.getsockname())

    connection.disconnect()

    def row():
        return next((r for r in tcp_rows() if r[1] == local), None)

    assert wait_for(lambda: row() is None or row()[3] not in FIN_WAIT, timeout=10)
    assert row() is not None and row()[3] == TIME_WAIT, row()
