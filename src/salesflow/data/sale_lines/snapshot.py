"""The loaded lines shared through Redis as one Arrow snapshot, so that other processes start warm."""

from __future__ import annotations

import logging
import time
from datetime import datetime

import anyio
import pyarrow as pa

from salesflow.data.cache import Cache, cache_key
from salesflow.data.sale_lines.frames import LinesState
from salesflow.data.sources.base import SALE_LINE_COLUMNS, conform
from salesflow.heartbeat import BackgroundTasks
from salesflow.models.cache import CachePipeline

logger = logging.getLogger(__name__)

SNAPSHOT_KEY = cache_key(CachePipeline.LINES, "shared", kind="snapshot")
SNAPSHOT_TTL_SECONDS = 24 * 3600
# A tail refresh re-shares at most this often: each share encodes and sends every line kept.
TAIL_SHARE_INTERVAL_SECONDS = 60.0


class SharedSnapshot:
    def __init__(self, cache: Cache, tasks: BackgroundTasks) -> None:
        self.cache = cache
        self.tasks = tasks
        self._written = 0.0  # monotonic time of the last share

    async def read(self, *, now: datetime, max_age_seconds: float) -> LinesState | None:
        """The shared lines, unless none are shared or they were loaded `max_age_seconds` or more ago."""
        if self.cache.redis is None:
            return None
        payload = await self.cache.get_raw(SNAPSHOT_KEY)
        if payload is None:
            return None
        state = await anyio.to_thread.run_sync(_decode, payload)
        if (now - state.loaded_at).total_seconds() >= max_age_seconds:
            return None
        logger.info("sale lines loaded from the shared snapshot", extra={"lines": len(state.lines)})
        return state

    def share(self, state: LinesState) -> None:
        """Write the lines to Redis for other processes, in the background."""
        if self.cache.redis is None:
            return
        self._written = time.monotonic()
        self.tasks.spawn(self._write(state))

    def share_tail(self, state: LinesState, *, new_lines: int) -> None:
        """Share after a tail refresh that read new lines, at most once per interval."""
        if new_lines and time.monotonic() - self._written >= TAIL_SHARE_INTERVAL_SECONDS:
            self.share(state)

    async def _write(self, state: LinesState) -> None:
        payload = await anyio.to_thread.run_sync(_encode, state)
        await self.cache.set_raw(SNAPSHOT_KEY, payload, SNAPSHOT_TTL_SECONDS)


def _encode(state: LinesState) -> bytes:
    table = pa.Table.from_pandas(state.lines, preserve_index=False)
    meta = {
        b"since": state.since.isoformat().encode(),
        b"refreshed_at": state.refreshed_at.isoformat().encode(),
        b"loaded_at": state.loaded_at.isoformat().encode(),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _decode(payload: bytes) -> LinesState:
    table = pa.ipc.open_stream(payload).read_all()
    meta = table.schema.metadata or {}
    lines = table.to_pandas()
    lines = conform(lines, SALE_LINE_COLUMNS).assign(day=lines["day"].astype("datetime64[s]"))
    return LinesState(
        lines=lines,
        since=datetime.fromisoformat(meta[b"since"].decode()),
        refreshed_at=datetime.fromisoformat(meta[b"refreshed_at"].decode()),
        loaded_at=datetime.fromisoformat(meta[b"loaded_at"].decode()),
    )
