"""The distributed shape with real processes: the API enqueues on a real Redis, `salesflow worker` processes
run the jobs, the state lives in PostgreSQL, the files in the shared EXPORT_DIR."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

import httpx
import pytest

from salesflow.config import Settings
from salesflow.integration.java_demo import StandinState
from tests.api.test_reports import finished
from tests.jobs.processes import LEASE_SECONDS, gauge
from tests.servers import RedisProcess, wait_until

pytestmark = pytest.mark.timeout(300)


def test_worker_processes_run_the_jobs_the_api_enqueues(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tokens: dict[str, str],
) -> None:
    api = serve(distributed)  # the API starts first: its broker declares the consumer group
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    workers = [start_worker(), start_worker()]
    ids = [
        api.post("/reports/jobs", json={"report_type": kind, "format": fmt}, headers=admin).json()["job_id"]
        for kind in ("sales", "stock", "combined")
        for fmt in ("pdf", "excel")
    ]
    states = [finished(api, job_id, admin) for job_id in ids]
    assert [s["status"] for s in states] == ["completed"] * len(ids), states
    assert all(s["attempts"] == 1 for s in states)
    for job_id in ids:  # written by a worker, served by the API from the shared folder
        assert api.get(f"/reports/jobs/{job_id}/download", headers=admin).status_code == 200
    assert all(worker.poll() is None for worker in workers)
    assert len(list((distributed.reports.export_dir / "reports").iterdir())) == len(ids)


def test_a_worker_killed_mid_job_loses_nothing(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tokens: dict[str, str],
) -> None:
    """12 jobs on 2 workers; one worker is SIGKILLed while it holds a job: every job completes once."""
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    workers = {worker.pid: worker for worker in (start_worker(), start_worker())}
    ids = [
        api.post("/reports/jobs", json={"report_type": "combined", "format": "pdf"}, headers=admin).json()[
            "job_id"
        ]
        for _ in range(12)
    ]
    victim: dict[str, object] = {}

    def someone_is_generating() -> bool:
        for job_id in ids:
            state = api.get(f"/reports/jobs/{job_id}", headers=admin).json()
            if state["status"] == "generating" and state["worker"]:
                victim.update(state)
                return True
        return False

    wait_until(someone_is_generating, timeout=120, interval=0.05, what="a job in progress")
    pid = int(str(victim["worker"]).rsplit(":", 1)[1])
    workers[pid].send_signal(signal.SIGKILL)
    workers[pid].wait(30)
    states = [finished(api, job_id, admin) for job_id in ids]
    assert [s["status"] for s in states] == ["completed"] * len(ids)
    survivor = next(p for p in workers if p != pid)
    taken_again = next(s for s in states if s["job_id"] == victim["job_id"])
    assert int(str(taken_again["attempts"])) >= 2 and str(taken_again["worker"]).endswith(f":{survivor}")
    files = sorted(p.name for p in (distributed.reports.export_dir / "reports").iterdir())
    assert files == sorted(f"{i}.pdf" for i in ids)  # one file per job, whatever its attempts
    makers = {int(str(s["worker"]).rsplit(":", 1)[1]) for s in states}
    assert survivor in makers


def test_a_live_worker_keeps_a_job_that_runs_past_its_lease(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    standin: tuple[object, StandinState],
    tokens: dict[str, str],
) -> None:
    """The lease is renewed while the job runs: a job over two leases long is made once, by its first attempt
    (the sweep, every second, would hand back a lapsed one)."""
    _, java = standin
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    worker = start_worker()
    java.delay_seconds = 2 * LEASE_SECONDS  # each Java read; within a call's 20 s deadline
    job_id = api.post("/reports/jobs", json={"report_type": "sales", "format": "pdf"}, headers=admin).json()[
        "job_id"
    ]
    state = finished(api, job_id, admin)
    assert state["status"] == "completed" and state["attempts"] == 1
    assert str(state["worker"]).endswith(f":{worker.pid}")


def test_a_job_submitted_while_redis_is_away_is_sent_once_it_is_back(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    redis_server: RedisProcess,
    tokens: dict[str, str],
) -> None:
    """The job is accepted and kept queued in the state database; the sweep sends it when Redis returns."""
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    redis_server.stop()
    accepted = api.post("/reports/jobs", json={"report_type": "stock", "format": "pdf"}, headers=admin)
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    assert api.get(f"/reports/jobs/{job_id}", headers=admin).json()["status"] == "queued"
    redis_server.start()
    start_worker()
    state = finished(api, job_id, admin)
    assert state["status"] == "completed" and state["attempts"] == 1


def test_a_worker_takes_jobs_again_after_redis_restarted_empty(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    redis_server: RedisProcess,
    tokens: dict[str, str],
) -> None:
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    worker = start_worker()
    body = {"report_type": "stock", "format": "excel"}

    def run_one() -> dict[str, object]:
        return finished(api, api.post("/reports/jobs", json=body, headers=admin).json()["job_id"], admin)

    assert run_one()["status"] == "completed"
    redis_server.stop()
    redis_server.start()  # empty: no stream, no consumer group
    assert run_one()["status"] == "completed"  # sent before the worker declared the queue again, or after
    assert worker.poll() is None


def test_jobs_whose_messages_redis_lost_are_sent_again(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    redis_server: RedisProcess,
    tokens: dict[str, str],
) -> None:
    """A job queued (its message in Redis) when Redis restarts empty: the worker that finds the queue gone
    sends the queued jobs again at once (not after a 10-minute lease)."""
    api = serve(distributed.replaced(job_lease_seconds=600.0))
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    job_id = api.post("/reports/jobs", json={"report_type": "stock", "format": "pdf"}, headers=admin).json()[
        "job_id"
    ]
    redis_server.stop()
    redis_server.start()  # empty: the message is gone
    start_worker(JOB_LEASE_SECONDS="600")
    state = finished(api, job_id, admin)
    assert state["status"] == "completed" and state["attempts"] == 1


def test_the_job_backlog_shows_in_the_metrics_until_a_worker_takes_it(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tokens: dict[str, str],
) -> None:
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}

    def scrape() -> str:
        return api.get(api.base_url.copy_with(path="/metrics"), headers=admin).text

    waiting_before = gauge(scrape(), "salesflow_job_queue_messages", queue="interactive", state="waiting")
    ids = [
        api.post("/reports/jobs", json={"report_type": "stock", "format": "excel"}, headers=admin).json()[
            "job_id"
        ]
        for _ in range(3)
    ]
    backlog = scrape()
    assert gauge(backlog, "salesflow_job_queue_messages", queue="interactive", state="waiting") == (
        waiting_before + 3
    )
    assert gauge(backlog, "salesflow_report_jobs", status="queued") == 3
    start_worker()
    assert [finished(api, job_id, admin)["status"] for job_id in ids] == ["completed"] * 3
    drained = scrape()
    assert gauge(drained, "salesflow_job_queue_messages", queue="interactive", state="waiting") == 0
    assert gauge(drained, "salesflow_report_jobs", status="queued") == 0
    assert gauge(drained, "salesflow_report_jobs", status="generating") == 0


def _generating(api: httpx.Client, job_id: str, admin: dict[str, str]) -> dict[str, object]:
    state: dict[str, object] = {}

    def generating() -> bool:
        state.update(api.get(f"/reports/jobs/{job_id}", headers=admin).json())
        return state["status"] == "generating"

    wait_until(generating, timeout=60, interval=0.05, what="the job in progress")
    return state


def test_a_stopped_worker_finishes_its_running_job_within_the_grace(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    standin: tuple[object, StandinState],
    tokens: dict[str, str],
) -> None:
    _, java = standin
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    worker = start_worker(JOB_SHUTDOWN_GRACE_SECONDS="60")
    java.delay_seconds = 1.0  # the job's reads from Java take a while
    job_id = api.post("/reports/jobs", json={"report_type": "sales", "format": "pdf"}, headers=admin).json()[
        "job_id"
    ]
    _generating(api, job_id, admin)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    state = api.get(f"/reports/jobs/{job_id}", headers=admin).json()
    assert state["status"] == "completed" and state["attempts"] == 1
    assert str(state["worker"]).endswith(f":{worker.pid}")


def test_a_worker_stopped_past_its_grace_hands_its_job_back_at_once(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    standin: tuple[object, StandinState],
    tokens: dict[str, str],
) -> None:
    """No grace: the running job is cancelled and queued again at once (not after its 10-minute lease), its
    interrupted attempt not counted, and the next worker makes it."""
    _, java = standin
    api = serve(distributed.replaced(job_lease_seconds=600.0))
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    lease = {"JOB_LEASE_SECONDS": "600"}
    # The job is still reading from Java when the worker is stopped, however slow the machine: the read takes
    # a minute, and this worker waits for it (by default a Java call gives up after 20 s and fails the job).
    patient = {"JAVA_DEADLINE_SECONDS": "120", "JAVA_TIMEOUT_SECONDS": "120"}
    stopping = start_worker(JOB_SHUTDOWN_GRACE_SECONDS="0", **lease, **patient)
    java.delay_seconds = 60.0
    job_id = api.post("/reports/jobs", json={"report_type": "sales", "format": "pdf"}, headers=admin).json()[
        "job_id"
    ]
    assert str(_generating(api, job_id, admin)["worker"]).endswith(f":{stopping.pid}")
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(60) == 0
    handed_back = api.get(f"/reports/jobs/{job_id}", headers=admin).json()
    assert handed_back["status"] == "queued" and handed_back["attempts"] == 0
    java.delay_seconds = 0.0
    successor = start_worker(**lease)
    state = finished(api, job_id, admin)
    assert state["status"] == "completed" and state["attempts"] == 1
    assert str(state["worker"]).endswith(f":{successor.pid}")
