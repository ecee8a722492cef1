"""Throwaway PostgreSQL clusters and RabbitMQ brokers for the tests and the benchmarks.

`initdb` refuses root, so as root the cluster runs as the `postgres` system user.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kombu import Connection

from apps.devstack.processes import free_port, spawn, stop_all


def postgres_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        bindir = Path(out.stdout.strip())
        if (bindir / "postgres").exists():
            return bindir
    return None


def _as_postgres_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


FAST_SETTINGS = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]


@contextlib.contextmanager
def postgres_cluster(database: str = "switchyard", durable: bool = False) -> Iterator[str]:
    """Start a fast (fsync off) cluster on a free loopback port; yield its URL.
    durable: PostgreSQL's own defaults instead (fsync, synchronous_commit, full page
    writes on), for benchmarks that measure what a commit costs."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb) found")
    root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data = root / "data"
    port = free_port()
    subprocess.run(
        _as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                           "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    server = spawn(
        _as_postgres_user([str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                           "-k", str(root), "-c", "listen_addresses=127.0.0.1",
                           *([] if durable else FAST_SETTINGS), "-c", "max_connections=200"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_postgres(bindir, port)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
             database], check=True,
        )  # fmt: skip
        yield f"postgres://postgres@127.0.0.1:{port}/{database}"
    finally:
        stop_all([server])
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_postgres(bindir: Path, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not start on port {port}")


def rabbitmq_start_script() -> Path | None:
    """The real start script in the rabbitmq-server package's lib folder, if installed.

    Not the sbin wrapper: that one switches user and writes to system folders.
    """
    try:
        listing = subprocess.run(["dpkg", "-L", "rabbitmq-server"], capture_output=True, text=True)
    except FileNotFoundError:
        return None
    for line in listing.stdout.splitlines():
        if line.startswith("/usr/lib/") and line.endswith("bin/rabbitmq-server"):
            return Path(line).resolve()
    return None


@contextlib.contextmanager
def rabbitmq_server() -> Iterator[str]:
    """Start a private broker on free loopback ports, all state in a temp dir; yield its URL.

    On exit it stops the broker and its epmd (which outlives the node otherwise).
    """
    script = rabbitmq_start_script()
    if script is None:
        raise RuntimeError("RabbitMQ is not installed (Debian package rabbitmq-server)")
    root = Path(tempfile.mkdtemp(prefix="switchyard-rabbitmq-"))
    port, env = free_port(), _rabbitmq_env(root)
    env["RABBITMQ_NODE_PORT"] = str(port)
    log = open(root / "server.log", "wb")  # noqa: SIM115
    server = spawn([str(script)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"amqp://guest:guest@127.0.0.1:{port}//"
    try:
        _wait_for_amqp(url, server, root / "server.log")
        yield url
    finally:
        stop_all([server])
        subprocess.run(["epmd", "-kill"], env=env, capture_output=True)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _rabbitmq_env(root: Path) -> dict[str, str]:
    (root / "home").mkdir()
    (root / "enabled_plugins").write_text("[].\n")
    return {
        **os.environ,
        "HOME": str(root / "home"),  # the Erlang cookie lives here
        "RABBITMQ_NODENAME": f"switchyard-{root.name}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_DIST_PORT": str(free_port()),
        # A private epmd: a stray one on the default 4369 is common.
        "ERL_EPMD_PORT": str(free_port()),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_PID_FILE": str(root / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
    }


def _wait_for_amqp(url: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(OSError), Connection(url, connect_timeout=1) as connection:
            connection.connect()
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"RabbitMQ did not accept AMQP connections at {url}:\n{tail}")


class PostgresServer:
    """A throwaway cluster that can be stopped and started again on the same port and
    data directory, as a restarted database server is (pg_ctl, fast shutdown)."""

    # Fast and throwaway; `settings` given to the constructor override these.
    SETTINGS = {"fsync": "off", "synchronous_commit": "off", "max_connections": "200"}

    def __init__(self, database: str = "switchyard", settings: dict[str, str] | None = None):
        self.settings = {**self.SETTINGS, **(settings or {})}
        self.bindir = postgres_bindir()
        if self.bindir is None:
            raise RuntimeError("no PostgreSQL binaries (initdb) found")
        self.root = Path(tempfile.mkdtemp(prefix="switchyard-pg-restartable-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.database = database
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]),
            check=True, capture_output=True,
        )  # fmt: skip

    def create(self) -> None:
        subprocess.run(
            _as_postgres_user([str(self.bindir / "initdb"), "-D", str(self.data), "-U",
                               "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self.start()
        subprocess.run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", self.database], check=True,
        )  # fmt: skip

    def start(self) -> None:
        given = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {given}"
        self._pg_ctl("start", "-w", "-l", str(self.root / "server.log"), "-o", options)
        _wait_for_postgres(self.bindir, self.port)

    def stop(self, mode: str = "fast") -> None:
        """fast: roll back open transactions and drop every connection, then exit."""
        self._pg_ctl("stop", "-w", "-m", mode)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def restartable_postgres(
    database: str = "switchyard", settings: dict[str, str] | None = None
) -> Iterator[PostgresServer]:
    server = PostgresServer(database, settings)
    try:
        server.create()
        yield server
    finally:
        server.destroy()
