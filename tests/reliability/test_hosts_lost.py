"""Issue 14 scenario 2 on hosts (switchyard_dev/hosts.py): a worker host cut off from
every other host mid-job (its link down, then restored), then a worker host lost (its
whole process group SIGKILLed). Nothing but what docker-compose.yml and .env hold: the
sweeper runs every 30 s from beat and judges a worker lost after the default 45 s
(WORKER_LOST_AFTER_SECONDS); the visibility timeout is long (900 s), so Redis plays no
part in the resumption. The victim's runs must resume on the other worker host within two
minutes, and a cut-off host's late outcomes must be refused when its link is back.

Full size only (`make chaos-hosts`): each victim waits out the real threshold.
"""

import time

import pytest

from tests.helpers import wait_for

from .hosts_stack import Api, Database, count, make_ledger, running_topology, start_jobs
from .stack import report

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.hosts_full,
    pytest.mark.postgres_pass,
    pytest.mark.slow,
    pytest.mark.timeout(1500),
]

JOB_SECONDS = 20
HELD = ("started", "progress")
REFUSED = "outcome not stored, the run was taken back"


@pytest.fixture(scope="module")
def topo():
    env = {"CELERY_VISIBILITY_TIMEOUT": "900"}
    with running_topology(workers=2, beats=1, env=env) as topology:
        yield topology


def holders(db: Database, task_ids: list[str]) -> dict[str, list[str]]:
    """Worker host -> the runs it holds (started, not finished)."""
    held: dict[str, list[str]] = {}
    for task_id, (state, worker, _) in db.runs(task_ids).items():
        if state in HELD and worker:
            held.setdefault(worker.split("@")[-1], []).append(task_id)
    return held


def result_workers(db: Database, task_ids: list[str]) -> dict[str, str]:
    rows = db.rows("SELECT task_id, worker FROM django_celery_results_taskresult "
                   "WHERE task_id = ANY(%s)", task_ids)  # fmt: skip
    return dict(rows)


def moved_on(db: Database, task_ids: list[str], victim: str) -> bool:
    """Every run the victim held is held elsewhere now, or finished."""
    runs = db.runs(task_ids)
    return all(not (worker or "").endswith("@" + victim) or state not in HELD
               for state, worker, _ in runs.values())  # fmt: skip


def run_scenario(topo, tmp_path, record_property, *, cut: str):
    api, db, ledger = Api(topo), Database(topo), make_ledger(tmp_path)
    task_ids = start_jobs(api, ledger, 4, seconds=JOB_SECONDS).task_ids
    # The victim's pool is full of running jobs: it waits on no queue when it is cut off.
    held = wait_for(lambda: (h := holders(db, task_ids)) and max(map(len, h.values())) == 2
                    and h, timeout=120)  # fmt: skip
    victim = max(held, key=lambda host: len(held[host]))
    victims = held[victim]
    began = time.monotonic()
    if cut == "link":
        topo.partition(victim)
    else:
        topo.kill(victim)
    try:
        resumed = wait_for(lambda: moved_on(db, victims, victim), timeout=300, interval=1)
        resumed_s = time.monotonic() - began
        wait_for(lambda: db.unfinished(task_ids) == 0, timeout=300, interval=1)
    finally:
        if cut == "link":
            topo.heal(victim)
    late_refused = 0
    if cut == "link":  # its jobs ended while cut off: their outcomes are stored, or refused
        wait_for(lambda: topo.log(victim).count(REFUSED) >= len(victims), timeout=300, interval=1)
        late_refused = topo.log(victim).count(REFUSED)
    counts = count(f"hosts: worker {'cut off' if cut == 'link' else 'killed'}", db, task_ids,
                   ledger)  # fmt: skip
    counts.extra.update(victim=victim, victim_runs=len(victims), resumed_s=round(resumed_s, 1),
                        late_refused=late_refused)  # fmt: skip
    report(counts, record_property)
    assert resumed and resumed_s < 120, counts.line()
    assert counts.lost == 0, counts.line()
    others = result_workers(db, victims)
    assert all(not worker.endswith("@" + victim) for worker in others.values()), others
    return counts, victim, victims


def test_a_worker_host_cut_off_mid_job_has_its_runs_resumed_elsewhere_and_its_late_writes_refused(
    topo, tmp_path, record_property
):
    counts, _, victims = run_scenario(topo, tmp_path, record_property, cut="link")
    assert counts.extra["late_refused"] == len(victims)
    assert counts.duplicated <= len(victims)  # only the cut-off host's own late executions


def test_a_worker_host_lost_whole_has_its_runs_resumed_elsewhere_within_two_minutes(
    topo, tmp_path, record_property
):
    counts, _, _ = run_scenario(topo, tmp_path, record_property, cut="kill")
    assert counts.duplicated == 0
