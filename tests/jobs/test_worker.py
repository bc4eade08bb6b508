"""The distributed shape with real processes: the API enqueues on a real Redis, `salesflow worker` processes
run the jobs, the state lives in PostgreSQL, the files in the shared EXPORT_DIR."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from salesflow.config import Settings
from salesflow.integration.java_demo import DEV_SECRET, StandinState
from salesflow.jobs.runtime import JobRuntime
from tests.api.test_reports import finished
from tests.builders import pinned_clock
from tests.conftest import _reset_postgres
from tests.servers import RedisProcess, answers, free_port, wait_until

pytestmark = pytest.mark.timeout(300)


CHUNKS = 30  # of a demand batch, waiting in their queue
LEASE_SECONDS = 6  # renewed while a job runs; short, so that a killed worker's job is taken again quickly


@pytest.fixture
def distributed(prod_settings: Settings, postgres_url: str, tmp_path: Path) -> Settings:
    _reset_postgres(postgres_url)
    return prod_settings.replaced(
        job_backend="redis",
        state_database_url=postgres_url,
        export_dir=tmp_path / "shared",
        job_lease_seconds=LEASE_SECONDS,
        job_sweep_seconds=1.0,
    )


def worker_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """A process's environment for the distributed shape of `settings` (real clock, own DATA_DIR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAVA_", "DEV_", "APP_", "SYSTEM_"))}
    env.update(
        APP_ENV="test",
        DATA_SOURCE="java",
        JAVA_API_URL=settings.java.api_url,
        JAVA_JWT_SECRET=DEV_SECRET,
        JAVA_SERVICE_PHONE=str(settings.java.service_phone),
        JAVA_SERVICE_PASSWORD="password",
        REDIS_URL=str(settings.storage.redis_url),
        JOB_BACKEND="redis",
        STATE_DATABASE_URL=str(settings.storage.state_database_url),
        DATA_DIR=str(data_dir),
        EXPORT_DIR=str(settings.reports.export_dir),
        DEMAND_FORECASTS="false",
        FORECAST_WARM_UP="false",
        JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        JOB_SWEEP_SECONDS="1",
        SCHEDULER_ENABLED="false",
    )
    return env


@pytest.fixture
def start_worker(distributed: Settings, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    workers: list[subprocess.Popen[bytes]] = []

    def start(**env_overrides: str) -> subprocess.Popen[bytes]:
        env = worker_env(distributed, tmp_path / f"worker{len(workers)}") | env_overrides
        worker = subprocess.Popen(
            [sys.executable, "-m", "salesflow.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:  # that test has failed already; leave no process behind
            worker.kill()
            worker.wait()


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
    """30 jobs on 2 workers; one worker is SIGKILLed while it holds a job: every job completes once."""
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    workers = {worker.pid: worker for worker in (start_worker(), start_worker())}
    ids = [
        api.post("/reports/jobs", json={"report_type": "combined", "format": "pdf"}, headers=admin).json()[
            "job_id"
        ]
        for _ in range(30)
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


def _gauge(text: str, name: str, **labels: str) -> float:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(wanted)))


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

    waiting_before = _gauge(scrape(), "salesflow_job_queue_messages", queue="interactive", state="waiting")
    ids = [
        api.post("/reports/jobs", json={"report_type": "stock", "format": "excel"}, headers=admin).json()[
            "job_id"
        ]
        for _ in range(3)
    ]
    backlog = scrape()
    assert _gauge(backlog, "salesflow_job_queue_messages", queue="interactive", state="waiting") == (
        waiting_before + 3
    )
    assert _gauge(backlog, "salesflow_report_jobs", status="queued") == 3
    start_worker()
    assert [finished(api, job_id, admin)["status"] for job_id in ids] == ["completed"] * 3
    drained = scrape()
    assert _gauge(drained, "salesflow_job_queue_messages", queue="interactive", state="waiting") == 0
    assert _gauge(drained, "salesflow_report_jobs", status="queued") == 0
    assert _gauge(drained, "salesflow_report_jobs", status="generating") == 0


async def test_a_report_never_waits_behind_the_demand_batch(
    serve: Callable[..., httpx.Client],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tokens: dict[str, str],
) -> None:
    """The batch's chunks have a queue of their own: they wait there while a worker that takes only the
    interactive queue makes a report at once; a worker for the batch queue then takes them all."""
    api = serve(distributed)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}

    def backlog(state: str) -> float:
        scrape = api.get(api.base_url.copy_with(path="/metrics"), headers=admin).text
        return _gauge(scrape, "salesflow_job_queue_messages", queue="batch", state=state)

    runtime = JobRuntime.from_settings(distributed)
    await runtime.startup()
    try:
        for index in range(CHUNKS):
            await runtime.enqueue_demand_chunk(pinned_clock().date().isoformat(), index, CHUNKS, [index + 1])
    finally:
        await runtime.shutdown()
    start_worker(JOB_WORKER_QUEUES="interactive")
    job_id = api.post("/reports/jobs", json={"report_type": "stock", "format": "pdf"}, headers=admin).json()[
        "job_id"
    ]
    assert finished(api, job_id, admin)["status"] == "completed"
    assert backlog("waiting") == CHUNKS  # none taken by the interactive worker
    start_worker(JOB_WORKER_QUEUES="batch")
    wait_until(lambda: backlog("waiting") == backlog("delivered") == 0, timeout=120, what="the batch taken")


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


def test_two_scheduling_processes_fire_a_slot_once(
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tokens: dict[str, str],
    tmp_path: Path,
) -> None:
    """Two API processes run the scheduler on the real clock; the next minute's slot yields one run."""
    apis = []
    try:
        for k in range(2):
            port = free_port()
            env = worker_env(distributed, tmp_path / f"api{k}")
            env.update(PORT=str(port), SCHEDULER_ENABLED="true", SCHEDULE_SYNC_SECONDS="1")
            process = subprocess.Popen(
                [sys.executable, "-m", "salesflow.cli", "serve"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30, trust_env=False)
            apis.append((process, client))
        for _, client in apis:
            wait_until(lambda client=client: answers(client), timeout=60, what="an API process")
        start_worker()
        admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
        now = datetime.now(UTC)
        # The next minute, unless it starts too soon for both processes to see the schedule first.
        ahead = 1 if now.second <= 50 else 2
        slot = (now + timedelta(minutes=ahead)).replace(second=0, microsecond=0)
        body = {"report_type": "stock", "hour": slot.hour, "minute": slot.minute, "timezone": "UTC"}
        created = apis[0][1].post("/reports/schedules", json=body, headers=admin).json()
        runs_path = f"/reports/schedules/{created['schedule_id']}/runs"

        def ran() -> bool:
            runs = apis[1][1].get(runs_path, headers=admin).json()["data"]
            return bool(runs) and runs[0]["status"] == "completed"

        # Both processes fire at the slot; the run takes seconds, so when it is done both have fired.
        wait_until(ran, timeout=200, interval=0.5, what="the scheduled run")
        runs = apis[0][1].get(runs_path, headers=admin).json()["data"]
        assert len(runs) == 1 and runs[0]["status"] == "completed"
    finally:
        for process, client in apis:
            client.close()
            process.terminate()
        for process, _ in apis:
            process.wait(30)


async def test_the_demand_batch_is_shared_by_the_workers(
    make_settings: Callable[..., Settings],
    distributed: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    """With job workers, the day's forecast batch runs as product chunks that the workers compute; the result
    equals the embedded batch's."""
    from salesflow.resources import open_resources

    settings = distributed.replaced(demand_chunk_products=10, demand_forecasts=True)
    async with open_resources(settings, clock=pinned_clock) as resources:
        start_worker()
        start_worker()
        # The workers run on the real clock: the chunks are for the coordinator's day, given in each job.
        shared = await resources.demand_forecasts.refresh()
    async with open_resources(
        make_settings(
            data_source="java",
            java_api_url=distributed.java.api_url,
            java_service_phone="0000000000",
            java_service_password="password",
        ),
        clock=pinned_clock,
    ) as embedded:
        alone = await embedded.demand_forecasts.refresh()
    assert shared.keys() == alone.keys() and len(shared) == 40
    assert all(abs(shared[k] - alone[k]) < 1e-9 for k in shared)


def test_two_processes_checking_alerts_at_once_open_each_alert_once(
    distributed: Settings, tmp_path: Path
) -> None:
    """Two `salesflow check-alerts` processes evaluate the rules at the same moment against one PostgreSQL:
    every alert is opened by exactly one of them and told of in exactly one digest."""
    import asyncio
    import json

    from sqlalchemy import func, select

    from salesflow.state.database import StateDatabase
    from salesflow.state.tables import Alert, OutgoingMail

    checkers = []
    for k in range(2):
        env = worker_env(distributed, tmp_path / f"checker{k}")
        env["ALERT_RECIPIENTS"] = "boss@shop.test"
        checkers.append(
            subprocess.Popen(
                [sys.executable, "-m", "salesflow.cli", "check-alerts"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        )
    answers = []
    for checker in checkers:
        out, _ = checker.communicate(timeout=180)
        assert checker.returncode == 0
        answers.append(json.loads(out.decode().strip().splitlines()[-1]))
    opened = [tuple(pair) for answer in answers for pair in answer["opened"]]
    assert opened and len(opened) == len(set(opened))
    digests = {answer["digest_mail_id"] for answer in answers} - {None}

    async def stored() -> tuple[list[tuple[str, str]], dict[str | None, int], int]:
        async with (
            StateDatabase.open(str(distributed.storage.state_database_url)) as db,
            db.session() as session,
        ):
            alerts = (await session.execute(select(Alert.kind, Alert.subject, Alert.mail_id))).all()
            mails = await session.scalar(select(func.count()).select_from(OutgoingMail))
            by_mail: dict[str | None, int] = {}
            for _, _, mail_id in alerts:
                by_mail[mail_id] = by_mail.get(mail_id, 0) + 1
            return [(kind, subject) for kind, subject, _ in alerts], by_mail, int(mails or 0)

    alerts, by_mail, mails = asyncio.run(stored())
    assert sorted(alerts) == sorted(opened)  # nothing opened twice, nothing lost
    assert set(by_mail) == digests and mails == len(digests)  # every alert in one digest, each digest queued
