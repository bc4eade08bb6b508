"""The job queues: a worker takes the ones in `JOB_WORKER_QUEUES`, each with its own slots."""

from __future__ import annotations

from enum import StrEnum


class JobQueue(StrEnum):
    INTERACTIVE = "interactive"  # report jobs and alert checks: someone waits for them
    BATCH = "batch"  # the chunks of the day's demand-forecast batch: nobody waits for one
