"""A private RabbitMQ cluster of several nodes on loopback, for the quorum-queue chaos
scenario (tests/reliability/test_rabbitmq_quorum.py).

Each node is a real `rabbitmq-server` (the package's start script, as
`services.rabbitmq_server` runs it) with its own folders, AMQP port and distribution
port; all share one private epmd and one Erlang cookie, and join the first node through
classic peer discovery. Nothing listens beyond 127.0.0.1.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from apps.devstack.processes import free_port, spawn, stop_all

from .services import _wait_for_amqp, rabbitmq_start_script


@dataclass
class Node:
    name: str
    root: Path
    env: dict[str, str]
    port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def launch(self) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115
        self.process = spawn([str(rabbitmq_start_script())], env=self.env, stdout=log,
                             stderr=subprocess.STDOUT)  # fmt: skip
        log.close()

    def wait_ready(self) -> None:
        _wait_for_amqp(self.url, self.process, self.root / "server.log", timeout=120)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def stop(self) -> None:
        """SIGTERM: the node leaves as a stopped machine's would (its peers keep it listed)."""
        if self.process is not None:
            stop_all([self.process])
            self.process = None

    def kill(self) -> None:
        """SIGKILL the node's whole process group, as when its machine dies."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """rabbitmqctl (or another CLI tool, `tool=`) against this node."""
        return run_cli("rabbitmqctl", self, *args, timeout=timeout)


def run_cli(tool: str, node: Node, *args: str, timeout: float = 60) -> str:
    script = rabbitmq_start_script().parent / tool
    done = subprocess.run([str(script), "-n", node.name, *args], env=node.env, text=True,
                          capture_output=True, timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


def _node(root: Path, index: int, shared: dict[str, str], seed: str) -> Node:
    home = root / f"node{index}"
    (home / "home").mkdir(parents=True)
    cookie = home / "home" / ".erlang.cookie"
    cookie.write_text(shared["cookie"])
    cookie.chmod(0o400)
    (home / "enabled_plugins").write_text("[].\n")
    (home / "rabbitmq.conf").write_text(
        "cluster_formation.peer_discovery_backend = classic_config\n"
        f"cluster_formation.classic_config.nodes.1 = {seed}\n"
        "loopback_users.guest = true\n"
    )
    name, port = f"sy{index}-{root.name}@localhost", free_port()
    env = {
        **os.environ,
        "HOME": str(home / "home"),
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "ERL_EPMD_PORT": shared["epmd"],
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
    }
    return Node(name, home, env, port)


@contextlib.contextmanager
def rabbitmq_cluster(size: int = 3) -> Iterator[list[Node]]:
    """Start `size` nodes, the first alone, the others joining it; yield them once
    `cluster_status` lists every node running. Stops every node and epmd on exit."""
    if rabbitmq_start_script() is None:
        raise RuntimeError("RabbitMQ is not installed (Debian package rabbitmq-server)")
    root = Path(tempfile.mkdtemp(prefix="sy14q-"))
    shared = {"cookie": secrets.token_hex(16), "epmd": str(free_port())}
    seed = f"sy1-{root.name}@localhost"
    nodes = [_node(root, index, shared, seed) for index in range(1, size + 1)]
    try:
        nodes[0].start()
        for node in nodes[1:]:
            node.launch()
        for node in nodes[1:]:
            node.wait_ready()
        wait_for_members(nodes[0], [node.name for node in nodes])
        yield nodes
    finally:
        stop_all([node.process for node in nodes if node.process is not None])
        subprocess.run(["epmd", "-kill"], env=nodes[0].env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


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
