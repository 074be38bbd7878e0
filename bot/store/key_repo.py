"""Reads and writes of the key inventory and key events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models.key_inventory import KeyEvent, KeyRecord, KeyState


async def by_model_serial(session: AsyncSession, aaguid: str, serial: str) -> KeyRecord | None:
    result = await session.execute(
        select(KeyRecord).where(KeyRecord.aaguid == aaguid, KeyRecord.serial == serial)
    )
    return result.scalar_one_or_none()


async def by_serial(session: AsyncSession, serial: str) -> Sequence[KeyRecord]:
    result = await session.execute(select(KeyRecord).where(KeyRecord.serial == serial))
    return result.scalars().all()


async def by_method(session: AsyncSession, method_id: str) -> KeyRecord | None:
    result = await session.execute(
        select(KeyRecord)
        .where(KeyRecord.entra_method_id == method_id)
        .order_by(KeyRecord.last_seen_at.desc())
    )
    return result.scalars().first()


async def by_id(session: AsyncSession, key_id: str) -> KeyRecord | None:
    return await session.get(KeyRecord, key_id, populate_existing=True)


async def of_user(session: AsyncSession, entra_id: str) -> Sequence[KeyRecord]:
    result = await session.execute(select(KeyRecord).where(KeyRecord.user_entra_id == entra_id))
    return result.scalars().all()


async def add(session: AsyncSession, row: KeyRecord) -> None:
    session.add(row)
    await session.flush()


async def add_event(session: AsyncSession, row: KeyEvent) -> None:
    session.add(row)
    await session.flush()


async def events(session: AsyncSession, key_id: str, limit: int = 200) -> Sequence[KeyEvent]:
    """The key's newest `limit` events, oldest first (a history reads top to bottom)."""
    result = await session.execute(
        select(KeyEvent).where(KeyEvent.key_id == key_id).order_by(KeyEvent.id.desc()).limit(limit)
    )
    return list(reversed(result.scalars().all()))


async def transition(
    session: AsyncSession, key_id: str, *, expected: Iterable[KeyState], to: KeyState, **values: Any
) -> bool:
    """Compare-and-set the key's state: True for the one caller that moved it."""
    result = await session.execute(
        update(KeyRecord)
        .where(KeyRecord.id == key_id, KeyRecord.state.in_([s.value for s in expected]))
        .values(state=to.value, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def touch(row: KeyRecord, **values: Any) -> None:
    for name, value in values.items():
        setattr(row, name, value)
