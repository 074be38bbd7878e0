"""Reads and appends of the audit log. Rows are never updated or deleted (PostgreSQL enforces it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models.audit import AuditRow

# Serialises chain appends on PostgreSQL; transaction-scoped, so it is released at commit or rollback.
# An advisory lock needs no privilege beyond INSERT, unlike LOCK TABLE. ("keydaudt" as a bigint.)
CHAIN_LOCK_KEY = 0x6B65_7964_6175_6474


async def lock_chain(session: AsyncSession) -> None:
    """Hold the chain until this transaction ends, so two writers never link to the same head.

    SQLite needs nothing: every transaction starts with BEGIN IMMEDIATE (bot/store/db.py), which already
    makes writers take turns.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})


async def head(session: AsyncSession) -> AuditRow | None:
    result = await session.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))
    return result.scalar_one_or_none()


async def append(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(AuditRow).values(**values))


async def page(session: AsyncSession, *, after_seq: int | None, limit: int) -> list[AuditRow]:
    """Rows in chain order, keyset-paginated so verifying a long log never loads it whole."""
    statement = select(AuditRow).order_by(AuditRow.seq).limit(limit)
    if after_seq is not None:
        statement = statement.where(AuditRow.seq > after_seq)
    result = await session.execute(statement)
    return list(result.scalars().all())


async def search(session: AsyncSession, *, action_prefix: str | None, target: str | None) -> list[AuditRow]:
    statement = select(AuditRow).order_by(AuditRow.seq)
    if action_prefix is not None:
        statement = statement.where(AuditRow.action.startswith(action_prefix, autoescape=True))
    if target is not None:
        statement = statement.where(AuditRow.target == target)
    result = await session.execute(statement)
    return list(result.scalars().all())
