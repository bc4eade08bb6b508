"""Report files on a disk that fills up: a clear error, no partial file left behind, and the job made once
space is freed."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from salesflow.background import sweep_once
from salesflow.config import Settings
from salesflow.errors import StorageFull
from salesflow.integration.jwt import DEV_USER
from salesflow.models.reports import ReportFormat, ReportRequest, ReportType
from salesflow.resources import open_resources
from salesflow.services.reports.artifacts import ArtifactStore
from salesflow.state.tables import ReportJob
from tests.builders import pinned_clock


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (this machine kind runs the suite as root)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=False)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_export_folder_is_named_and_leaves_no_partial_file(small_disk: Path) -> None:
    store = ArtifactStore(small_disk)
    assert store.write("a" * 32, ReportFormat.PDF, b"x" * 1000).exists()
    with pytest.raises(StorageFull, match=r"the export folder \(EXPORT_DIR\) is full"):
        store.write("b" * 32, ReportFormat.PDF, b"x" * (2 * 1024 * 1024))
    assert sorted(p.name for p in (small_disk / "reports").iterdir()) == [f"{'a' * 32}.pdf"]


async def test_a_job_that_finds_the_disk_full_is_made_once_space_is_freed(
    make_settings: Callable[..., Settings], store_file: Path, small_disk: Path
) -> None:
    """The attempt keeps its lease, its reason shown; after the lease, with space freed, the job completes."""
    now = [pinned_clock()]
    settings = make_settings(dev_mode=True, java_jwt_secret=None, export_dir=small_disk, job_lease_seconds=60)
    async with open_resources(settings, clock=lambda: now[0]) as resources:
        filler = small_disk / "filler"
        with filler.open("wb", buffering=0) as stream, contextlib.suppress(OSError):
            while stream.write(b"\0" * 65536):
                pass
        job = await resources.reports.submit(ReportRequest(report_type=ReportType.STOCK), user=DEV_USER)

        async def noted() -> ReportJob:
            while True:
                state = await resources.reports.jobs.get(job.id)
                assert state is not None
                if state.error:
                    return state
                await anyio.sleep(0.05)

        with anyio.fail_after(60):
            waiting = await noted()
        assert waiting.status == "generating" and waiting.error == (
            "the export folder (EXPORT_DIR) is full: the file could not be written; it will be tried again"
        )
        filler.unlink()
        now[0] += timedelta(seconds=61)  # the lease is over
        assert await sweep_once(resources) == (1, 0)
        with anyio.fail_after(60):
            done = await resources.reports.wait(job.id)
        assert done.status == "completed" and done.attempts == 2 and done.error is None
