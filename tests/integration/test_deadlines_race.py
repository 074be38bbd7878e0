"""Two replicas pumping one database: every deadline runs exactly once."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.clock import FrozenClock
from bot.deadlines import Deadline, Deadlines, Handler
from bot.store import deadline_repo
from bot.store.db import Database
from bot.store.models.deadlines import DeadlineRow

DUE = 200
needs_postgres = pytest.mark.skipif(
    not os.environ.get("KEYDESK_TEST_DATABASE_URL"), reason="needs KEYDESK_TEST_DATABASE_URL (PostgreSQL)"
)


async def pump_until_idle(deadlines: Deadlines) -> None:
    idle_rounds = 0
    while idle_rounds < 3:  # the other replica may still hold claims it is about to finish
        idle_rounds = idle_rounds + 1 if await deadlines.pump_once() == 0 else 0
        await asyncio.sleep(0)


def counting_handler(owner: str, ran: Counter[int], by_replica: Counter[str]) -> Handler:
    async def handler(deadline: Deadline) -> None:
        ran[deadline.id] += 1
        by_replica[owner] += 1
        await asyncio.sleep(0)  # let the other replica's claim interleave

    return handler


async def test_two_replicas_run_each_deadline_exactly_once(
    database_url: str, database: Database, clock: FrozenClock
) -> None:
    """On PostgreSQL through FOR UPDATE SKIP LOCKED; on SQLite through the guarded atomic claim."""
    ran: Counter[int] = Counter()
    by_replica: Counter[str] = Counter()
    second_engine = Database(database_url)
    try:
        replicas = []
        for owner, engine in (("replica-a", database), ("replica-b", second_engine)):
            replica = Deadlines(engine, clock, owner=owner, batch=7)
            replica.register("redact", counting_handler(owner, ran, by_replica))
            replicas.append(replica)
        async with database.session() as session:
            for number in range(DUE):
                due = clock.now() - timedelta(seconds=number % 7)
                await replicas[0].schedule("redact", due, {"n": number}, session=session)

        await asyncio.gather(*(pump_until_idle(replica) for replica in replicas))
    finally:
        await second_engine.close()

    assert len(ran) == DUE
    assert set(ran.values()) == {1}
    assert by_replica["replica-a"] > 0
    assert by_replica["replica-b"] > 0  # both really took part
    async with database.session() as session:
        states = dict(
            (await session.execute(select(DeadlineRow.state, func.count()).group_by(DeadlineRow.state))).all()
        )
    assert states == {"done": DUE}


@pytest.mark.postgres
@needs_postgres
async def test_a_claim_in_progress_is_skipped_not_waited_for(
    database_url: str, database: Database, clock: FrozenClock
) -> None:
    """While one replica's claim transaction holds its rows, another claims different rows at once."""
    deadlines = Deadlines(database, clock, owner="seed")
    for _ in range(10):
        await deadlines.schedule("redact", clock.now())
    second_engine = Database(database_url)
    now, until = clock.now(), clock.now() + timedelta(seconds=60)
    try:
        async with database.session() as holding:
            first = await deadline_repo.claim_due(holding, now=now, token="a", until=until, limit=4)
            async with second_engine.session() as other:
                second = await asyncio.wait_for(
                    deadline_repo.claim_due(other, now=now, token="b", until=until, limit=100), 5
                )
    finally:
        await second_engine.close()
    assert len(first) == 4
    assert len(second) == 6
    assert not {row.id for row in first} & {row.id for row in second}
