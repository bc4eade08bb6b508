"""The state database: one async engine per process, its sessions, and migrations at start-up.

`STATE_DATABASE_URL` defaults to an SQLite file under `DATA_DIR` (aiosqlite: nothing to install); production
uses PostgreSQL (`postgresql+asyncpg://…`). `migrate()` brings the schema to the newest Alembic revision;
several processes starting at once take turns (PostgreSQL: an advisory lock; SQLite: its file lock).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from salesflow.errors import StateUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 7_271_828  # PostgreSQL advisory lock key held while migrating


RECORD_ID = re.compile(r"[0-9a-f]{32}")  # every record's id: uuid4().hex


def is_record_id(value: str) -> bool:
    """Whether `value` can be a record's id: checked before any query, so that bytes a database refuses
    (a NUL, an overlong string) are a plain "not found" on every engine, never a database error."""
    return RECORD_ID.fullmatch(value) is not None


SQLITE_BUSY_MILLISECONDS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    """Readers never wait for a writer (WAL), and a writer waits for another's lock instead of failing at
    once: a stopping process hands its jobs back while a cancelled job's transaction may still be closing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MILLISECONDS}")
    cursor.close()


def default_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'state.sqlite3'}"


class StateDatabase:
    """The engine and a session factory; `async with StateDatabase.open(url)` closes the engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[StateDatabase]:
        engine = create_async_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            yield cls(engine)
        finally:
            await engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision."""
        async with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await connection.run_sync(_upgrade)

    async def check(self) -> None:
        """A round trip (readiness)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; losing the database mid-way is `StateUnavailable` (a clean 503), not a crash."""
        try:
            async with self.sessions() as session:
                yield session
        except (IntegrityError, ProgrammingError, DataError):
            raise  # a constraint the caller handles, or a bug: not the database being away
        except (DBAPIError, OSError) as exc:  # refused, lost, shutting down or starting up
            raise StateUnavailable("the state database is unavailable; try again shortly") from exc


def _upgrade(connection: Connection) -> None:
    # Alembic (~0.5 s to import) is needed once, by whichever process migrates.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
