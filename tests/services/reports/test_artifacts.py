"""Report files on a disk that fills up: a clear error, and no partial file left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from salesflow.errors import StorageFull
from salesflow.models.reports import ReportFormat
from salesflow.services.reports.artifacts import ArtifactStore


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
