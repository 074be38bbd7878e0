"""Reads and writes of the key inventory and key events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models.key_inventory import KeyEvent, KeyRecord


async def by_model_serial(session: AsyncSession, aaguid: str, serial: str) -> KeyRecord | None:
    result = await session.execute(
        select(KeyRecord).where(KeyRecord.aaguid == aaguid, KeyRecord.serial == serial)
    )
    return result.scalar_one_or_none()


async def by_serial(session: AsyncSession, serial: str) -> Sequence[KeyRecord]:
    result = await session.execute(select(KeyRecord).where(KeyRecord.serial == serial))
    return result.scalars().all()


async def add(session: AsyncSession, row: KeyRecord) -> None:
    session.add(row)
    await session.flush()


async def add_event(session: AsyncSession, row: KeyEvent) -> None:
    session.add(row)
    await session.flush()


async def events(session: AsyncSession, key_id: str, limit: int = 50) -> Sequence[KeyEvent]:
    result = await session.execute(
        select(KeyEvent).where(KeyEvent.key_id == key_id).order_by(KeyEvent.id.desc()).limit(limit)
    )
    return result.scalars().all()


def touch(row: KeyRecord, **values: Any) -> None:
    for name, value in values.items():
        setattr(row, name, value)
