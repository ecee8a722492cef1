"""A private RabbitMQ cluster of several nodes, each on a host of its own, for the
quorum-queue chaos scenario (tests/reliability/test_rabbitmq_quorum.py).

The hosts are the hosts harness's (switchyard_dev/hosts.py): one network namespace each
on a bridge, with its own address, hostname (`rabbit-1`, `rabbit-2`...) and hosts file
in which the other hosts' names resolve. Each node is a real `rabbitmq-server` (the
package's start script, as `services.rabbitmq_server` runs it) named `rabbit@rabbit-N`
on the default ports, with its own epmd (started by the node, in its namespace); the
nodes share one Erlang cookie, talk Erlang distribution over the bridge, and join the
first node through classic peer discovery. The test process reaches each node's AMQP
port through the bridge (`guest` may log in from beyond loopback here).
"""

import contextlib
import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .hosts import Topology, skip_reason
from .services import _wait_for_amqp, rabbitmq_start_script

AMQP_PORT = 5672


@dataclass
class Node:
    name: str  # the Erlang node name, rabbit@<host>
    host: str
    topo: Topology
    root: Path
    env: dict[str, str]

    @property
    def address(self) -> str:
        return self.topo.address(self.host)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.address}:{AMQP_PORT}//"

    @property
    def process(self) -> subprocess.Popen | None:
        return self.topo.hosts[self.host].process

    def launch(self) -> None:
        self.topo.spawn(self.host, [str(rabbitmq_start_script())], self.env, cwd=self.root)

    def wait_ready(self) -> None:
        _wait_for_amqp(self.url, self.process, self.topo.hosts[self.host].log_path, timeout=120)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def kill(self) -> None:
        """SIGKILL the host's whole process group, then whatever else runs on it (its
        epmd), as when the machine dies."""
        self.topo.kill(self.host)
        self.topo.kill_namespace(self.host)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """rabbitmqctl against this node, run on its host."""
        script = rabbitmq_start_script().parent / "rabbitmqctl"
        done = self.topo.execute(self.host, [str(script), "-n", self.name, *args], self.env,
                                 timeout=timeout)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout


def _node(topo: Topology, host: str, cookie: str, seed: str) -> Node:
    home = topo.hosts[host].directory
    (home / "home").mkdir()
    cookie_file = home / "home" / ".erlang.cookie"
    cookie_file.write_text(cookie)
    cookie_file.chmod(0o400)
    (home / "enabled_plugins").write_text("[].\n")
    (home / "rabbitmq.conf").write_text(
        "cluster_formation.peer_discovery_backend = classic_config\n"
        f"cluster_formation.classic_config.nodes.1 = {seed}\n"
        "loopback_users.guest = false\n"  # the test process connects through the bridge
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home / "home"),  # the Erlang cookie lives here
        "RABBITMQ_NODENAME": f"rabbit@{host}",
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
    }
    return Node(f"rabbit@{host}", host, topo, home, env)


def cluster_skip_reason() -> str | None:
    """Why the cluster cannot be made here, or None."""
    if rabbitmq_start_script() is None:
        return "RabbitMQ is not installed (Debian package rabbitmq-server)"
    return skip_reason()


@contextlib.contextmanager
def rabbitmq_cluster(size: int = 3) -> Iterator[list[Node]]:
    """Start `size` nodes on hosts `rabbit-1`..`rabbit-N`, the first alone, the others
    joining it; yield them once `cluster_status` lists every node running. Every
    process, namespace and folder is removed on exit."""
    reason = cluster_skip_reason()
    if reason:
        raise RuntimeError(reason)
    names = [f"rabbit-{index}" for index in range(1, size + 1)]
    handle, path = tempfile.mkstemp(prefix="sy14q-", suffix=".yml")
    os.close(handle)
    compose = Path(path)
    compose.write_text(json.dumps({"services": {name: {"image": "rabbitmq:3.10"}
                                                for name in names}}))  # fmt: skip
    try:
        with Topology({}, workers=0, beats=0, compose_file=compose, flower=False) as topo:
            cookie = secrets.token_hex(16)
            nodes = [_node(topo, name, cookie, f"rabbit@{names[0]}") for name in names]
            nodes[0].start()
            for node in nodes[1:]:
                node.launch()
            for node in nodes[1:]:
                node.wait_ready()
            wait_for_members(nodes[0], [node.name for node in nodes])
            yield nodes
    finally:
        compose.unlink(missing_ok=True)


def running_nodes(node: Node) -> list[str]:
    return json.loads(node.ctl("cluster_status", "--formatter", "json"))["running_nodes"]


def wait_for_members(node: Node, names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = running_nodes(node)
        if set(names) <= set(status):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"cluster did not form: {status}")
        time.sleep(1)
