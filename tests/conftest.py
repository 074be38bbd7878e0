"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.clock import FrozenClock
from bot.store.db import Database
from bot.store.models import metadata

PG_URL = os.environ.get("KEYDESK_TEST_DATABASE_URL", "")
DATA = Path(__file__).parent / "data"


def pytest_report_header() -> str:
    return f"keydesk database under test: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite'}"


@pytest.fixture
def on_postgres() -> bool:
    return bool(PG_URL)


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'keydesk.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}search_path={schema}"
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A Database whose tables exist (created from the models; migrations are tested on their own)."""
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()
