"""The event dedup on the ack path: one short statement, yet shared by every replica through the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.store import events_repo
from bot.store.db import Database
from bot.store.models.slack_events import ProcessedEvent

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


async def claim(db: Database, event_id: str) -> bool:
    async with db.single_statement() as session:
        return await events_repo.claim_event(session, event_id, NOW)


async def test_first_delivery_wins_and_the_claim_is_committed(database: Database) -> None:
    assert await claim(database, "Ev1") is True
    assert await claim(database, "Ev1") is False
    replica = Database(database.url)  # another process on the same database sees the claim
    try:
        assert await claim(replica, "Ev1") is False
        async with replica.read() as session:
            stored = await session.scalar(
                select(ProcessedEvent.received_at).where(ProcessedEvent.event_id == "Ev1")
            )
        assert stored == NOW
    finally:
        await replica.close()


async def test_replicas_racing_for_the_same_events_claim_each_once(database: Database) -> None:
    replica = Database(database.url)
    try:
        ids = [f"Ev{n}" for n in range(20)]
        results = await asyncio.gather(*(claim(db, e) for e in ids for db in (database, replica, database)))
        assert sum(results) == len(ids)
        async with database.read() as session:
            assert await session.scalar(select(func.count()).select_from(ProcessedEvent)) == len(ids)
    finally:
        await replica.close()


async def test_a_claim_leaves_no_transaction_open(database: Database) -> None:
    """On SQLite a leftover write lock would make the next writer wait out busy_timeout."""
    await claim(database, "Ev-lock")
    async with asyncio.timeout(5):
        async with database.session() as session:
            assert await events_repo.claim_event(session, "Ev-next", NOW) is True
