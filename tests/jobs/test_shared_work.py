"""Work that several processes share is done once: the demand batch's chunks on its own queue, a schedule's
slot seen by two API processes, alerts checked by two processes at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from salesflow.config import Settings
from salesflow.jobs.runtime import JobRuntime
from tests.api.test_reports import finished
from tests.builders import pinned_clock
from tests.jobs.processes import gauge, worker_env
from tests.servers import answers, free_port, wait_until

pytestmark = pytest.mark.timeout(300)

CHUNKS = 30  # of a demand batch, waiting in their queue


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
        return gauge(scrape, "salesflow_job_queue_messages", queue="batch", state=state)

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
