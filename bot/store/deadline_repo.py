"""Reads and writes of the deadlines table. Claims are short transactions; handlers run outside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models.deadlines import DeadlineRow, DeadlineState

PENDING = DeadlineState.PENDING.value


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        DeadlineRow.state == PENDING,
        DeadlineRow.due_at <= now,
        or_(DeadlineRow.claimed_until.is_(None), DeadlineRow.claimed_until < now),
    )


def _owned(deadline_id: int, token: str) -> ColumnElement[bool]:
    """Still ours: a lapsed claim taken over by another pump, or a reschedule, clears or changes the token."""
    return and_(DeadlineRow.id == deadline_id, DeadlineRow.claimed_by == token, DeadlineRow.state == PENDING)


async def add(
    session: AsyncSession,
    *,
    kind: str,
    key: str | None,
    due_at: datetime,
    payload: dict[str, Any],
    now: datetime,
    replace: bool,
) -> bool:
    """Insert a pending deadline. An existing key is left alone, or reset to this schedule if `replace`.

    Returns True when a row was written.
    """
    values: dict[str, Any] = {
        "kind": kind,
        "key": key,
        "state": PENDING,
        "due_at": due_at,
        "payload": payload,
        "attempts": 0,
        "created_at": now,
    }
    if key is None:
        await session.execute(insert(DeadlineRow).values(**values))
        return True
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(DeadlineRow).values(**values)
    if replace:
        reset = {name: values[name] for name in ("kind", "state", "due_at", "payload", "attempts")}
        reset |= {"claimed_by": None, "claimed_until": None, "last_error": None, "finished_at": None}
        upsert = statement.on_conflict_do_update(index_elements=["key"], set_=reset)
        result = await session.execute(upsert)
    else:
        result = await session.execute(statement.on_conflict_do_nothing(index_elements=["key"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def cancel(session: AsyncSession, key: str, now: datetime) -> bool:
    """Mark a pending deadline cancelled. The row stays (keys are once-only) until purged."""
    result = await session.execute(
        update(DeadlineRow)
        .where(DeadlineRow.key == key, DeadlineRow.state == PENDING)
        .values(state=DeadlineState.CANCELLED.value, finished_at=now, claimed_by=None, claimed_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_due(
    session: AsyncSession, *, now: datetime, token: str, until: datetime, limit: int
) -> list[DeadlineRow]:
    """Take up to `limit` due rows for `token` and count the attempt.

    PostgreSQL: concurrent pumps skip each other's locked rows (FOR UPDATE SKIP LOCKED). SQLite: the
    statement runs inside BEGIN IMMEDIATE, so claims are serialised, and the guard in the UPDATE's own
    WHERE makes a row claimable by one pump only until its claim lapses.
    """
    # A CTE, not `id IN (subquery)`: PostgreSQL may run such a subquery as a semi-join that re-scans
    # it per outer row, and with SKIP LOCKED each re-scan finds other rows, so LIMIT stops limiting.
    # A CTE with FOR UPDATE is always materialised: it runs once.
    due = (
        select(DeadlineRow.id)
        .where(_claimable(now))
        .order_by(DeadlineRow.due_at, DeadlineRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    statement = (
        update(DeadlineRow)
        .where(DeadlineRow.id == due.c.id, _claimable(now))
        .values(claimed_by=token, claimed_until=until, attempts=DeadlineRow.attempts + 1)
        .returning(DeadlineRow)
        .execution_options(synchronize_session=False)
    )
    rows = list((await session.execute(statement)).scalars().all())
    return sorted(rows, key=lambda row: (row.due_at, row.id))


async def mark_done(session: AsyncSession, deadline_id: int, token: str, now: datetime) -> bool:
    result = await session.execute(
        update(DeadlineRow)
        .where(_owned(deadline_id, token))
        .values(
            state=DeadlineState.DONE.value,
            finished_at=now,
            claimed_by=None,
            claimed_until=None,
            last_error=None,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_failed(session: AsyncSession, deadline_id: int, token: str, now: datetime, error: str) -> bool:
    result = await session.execute(
        update(DeadlineRow)
        .where(_owned(deadline_id, token))
        .values(
            state=DeadlineState.FAILED.value,
            finished_at=now,
            claimed_by=None,
            claimed_until=None,
            last_error=error,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(
    session: AsyncSession,
    deadline_id: int,
    token: str,
    *,
    due_at: datetime,
    error: str | None,
    refund_attempt: bool,
) -> bool:
    """Give the claim back with a new due time; `refund_attempt` un-counts the attempt taken at claim."""
    attempts = DeadlineRow.attempts - 1 if refund_attempt else DeadlineRow.attempts
    result = await session.execute(
        update(DeadlineRow)
        .where(_owned(deadline_id, token))
        .values(due_at=due_at, claimed_by=None, claimed_until=None, last_error=error, attempts=attempts)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def next_due(session: AsyncSession) -> datetime | None:
    result = await session.execute(select(func.min(DeadlineRow.due_at)).where(DeadlineRow.state == PENDING))
    value: datetime | None = result.scalar_one_or_none()
    return value


async def get_by_key(session: AsyncSession, key: str) -> DeadlineRow | None:
    result = await session.execute(select(DeadlineRow).where(DeadlineRow.key == key))
    return result.scalar_one_or_none()


async def purge_finished(session: AsyncSession, before: datetime) -> int:
    """Drop done and cancelled rows finished before `before`; failed rows stay for a person to look at."""
    finished = (DeadlineState.DONE.value, DeadlineState.CANCELLED.value)
    result = await session.execute(
        delete(DeadlineRow).where(DeadlineRow.state.in_(finished), DeadlineRow.finished_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
