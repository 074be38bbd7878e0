"""Migrations build exactly the schema the models describe, idempotently, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from bot.audit import AuditLog
from bot.clock import FrozenClock
from bot.deadlines import Deadlines
from bot.store.db import Database
from bot.store.migrate import alembic_config, current_revision, head_revision, migrate
from bot.store.models import metadata

needs_postgres = pytest.mark.skipif(
    not os.environ.get("KEYDESK_TEST_DATABASE_URL"), reason="needs KEYDESK_TEST_DATABASE_URL (PostgreSQL)"
)


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def describe(difference: Any) -> str:
    """One line per difference: ('add_table', Table) or a list of ('modify_type', ...) tuples."""
    items = difference if isinstance(difference, list) else [difference]
    return "; ".join(" ".join(str(getattr(part, "name", part))[:60] for part in item[:4]) for item in items)


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_an_empty_database_migrates_to_exactly_the_models(database_url: str) -> None:
    await migrate(database_url)
    db = Database(database_url)
    try:
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(schema_differences)
            tables = await connection.run_sync(table_names)
    finally:
        await db.close()
    assert not differences, (
        "models and migrations differ; write a revision with `python -m bot.store.migrate revision MESSAGE`:\n"
        + "\n".join(describe(difference) for difference in differences)
    )
    assert tables == set(metadata.tables) | {"alembic_version"}
    assert await current_revision(database_url) == head_revision()


async def test_migrate_is_idempotent_and_keeps_data(database_url: str, clock: FrozenClock) -> None:
    await migrate(database_url)
    db = Database(database_url)
    try:
        await AuditLog(db, clock).record("system.started", actor="system")
        await Deadlines(db, clock, owner="t").schedule("x", clock.now(), key="kept")
        await migrate(database_url)
        await migrate(database_url)
        assert len(await AuditLog(db, clock).entries()) == 1
        assert await Deadlines(db, clock, owner="t").next_due() == clock.now()
    finally:
        await db.close()
    assert await current_revision(database_url) == head_revision()


async def test_replicas_starting_together_both_migrate(database_url: str) -> None:
    await asyncio.gather(migrate(database_url), migrate(database_url), migrate(database_url))
    assert await current_revision(database_url) == head_revision()


async def test_downgrade_to_base_and_back(database_url: str) -> None:
    await migrate(database_url)
    db = Database(database_url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        async with db.engine.connect() as connection:
            assert await connection.run_sync(table_names) == {"alembic_version"}
    finally:
        await db.close()
    await migrate(database_url)
    assert await current_revision(database_url) == head_revision()


@pytest.mark.postgres
@needs_postgres
async def test_the_migrated_audit_table_is_append_only_on_postgres(
    database_url: str, clock: FrozenClock
) -> None:
    await migrate(database_url)
    db = Database(database_url)
    try:
        audit = AuditLog(db, clock)
        await audit.record("system.started", actor="system")
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.session() as session:
                    await session.execute(text(statement))
        await audit.record("system.stopped", actor="system")  # inserts still work
        assert (await audit.verify()).checked == 2
    finally:
        await db.close()
