"""The database: one async engine and a session factory, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

READ_ONLY = "keydesk_read_only"
SINGLE_STATEMENT = "keydesk_single_statement"
WAL_SWITCH_ATTEMPTS = 20

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite returns naive ones, so they are re-tagged as UTC on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _enable_wal(cursor: Any) -> None:
    """Switch a SQLite file to WAL (persistent, so only the first connection of a new file does it).

    Changing the journal mode ignores busy_timeout: a replica that connects while another one holds
    the write lock (say, migrating the brand-new file) gets "database is locked" at once, so retry.
    """
    for attempt in range(WAL_SWITCH_ATTEMPTS):
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0] == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(min(0.01 * 2**attempt, 0.5))


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below): the driver's deferred BEGIN lets two writers deadlock
            # on lock upgrade, which busy_timeout cannot resolve.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            if ":memory:" not in url:
                _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Readers (WAL) never block anyone; writers take the lock up front so two never deadlock.
            options = conn.get_execution_options()
            if options.get(SINGLE_STATEMENT, False):
                return  # SQLite's own autocommit: the lock is held only while the one statement runs
            conn.exec_driver_sql("BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")

        return engine
    url, search_path = _pop_search_path(url)
    if search_path:
        # A schema of our own on a shared server: ?search_path=keydesk in KEYDESK_DATABASE_URL.
        kwargs.setdefault("connect_args", {}).setdefault("server_settings", {})["search_path"] = search_path
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_async_engine(url, **kwargs)


def _pop_search_path(url: str) -> tuple[str, str | None]:
    parsed = make_url(url)
    search_path = parsed.query.get("search_path")
    if search_path is None:
        return url, None
    value = search_path if isinstance(search_path, str) else search_path[0]
    return parsed.difference_update_query(["search_path"]).render_as_string(hide_password=False), value


class Database:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._readers = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._single = async_sessionmaker(
            self.engine.execution_options(**{SINGLE_STATEMENT: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: on SQLite it does not wait for, or hold, the write lock."""
        async with self._readers() as session, session.begin():
            yield session

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[AsyncSession]:
        """A session for ONE statement that is atomic on its own (an upsert, say).

        On SQLite it runs outside BEGIN IMMEDIATE, so it holds the write lock for microseconds instead
        of across several event-loop turns; hot paths (the event dedup before each ack) need that.
        On PostgreSQL it is an ordinary transaction. More than one statement here would not be atomic
        on SQLite: use `session()` for that.
        """
        async with self._single() as session, session.begin():
            yield session

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
