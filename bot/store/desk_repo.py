"""Reads and compare-and-set writes of desk agents, pairing codes, jobs and seen nonces."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models.desk import AgentState, DeskAgent, DeskJob, JobState, PairingCode, SeenNonce


# --- agents -----------------------------------------------------------------------------------
async def agent(session: AsyncSession, agent_id: str) -> DeskAgent | None:
    return await session.get(DeskAgent, agent_id, populate_existing=True)


async def live_agent_by_name(session: AsyncSession, name: str) -> DeskAgent | None:
    """The paired (awaiting confirmation or active) agent with this name; at most one exists."""
    result = await session.execute(
        select(DeskAgent).where(DeskAgent.name == name, DeskAgent.state != AgentState.REVOKED.value)
    )
    return result.scalars().first()


async def agent_by_name(session: AsyncSession, name: str) -> DeskAgent | None:
    """The live agent with this name, else the most recently paired revoked one (names are reused)."""
    live = await live_agent_by_name(session, name)
    if live is not None:
        return live
    result = await session.execute(
        select(DeskAgent).where(DeskAgent.name == name).order_by(DeskAgent.paired_at.desc()).limit(1)
    )
    return result.scalars().first()


async def agents(session: AsyncSession) -> Sequence[DeskAgent]:
    result = await session.execute(select(DeskAgent).order_by(DeskAgent.paired_at))
    return result.scalars().all()


async def add_agent(session: AsyncSession, row: DeskAgent) -> None:
    session.add(row)
    await session.flush()


async def transition_agent(
    session: AsyncSession, agent_id: str, *, expected: Iterable[AgentState], to: AgentState, **values: Any
) -> bool:
    result = await session.execute(
        update(DeskAgent)
        .where(DeskAgent.id == agent_id, DeskAgent.state.in_([s.value for s in expected]))
        .values(state=to.value, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_agent_fields(session: AsyncSession, agent_id: str, **values: Any) -> None:
    await session.execute(
        update(DeskAgent)
        .where(DeskAgent.id == agent_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# --- pairing codes ----------------------------------------------------------------------------
async def add_code(session: AsyncSession, row: PairingCode) -> None:
    session.add(row)
    await session.flush()


async def code_by_hash(session: AsyncSession, code_hash: str) -> PairingCode | None:
    result = await session.execute(select(PairingCode).where(PairingCode.code_hash == code_hash))
    return result.scalar_one_or_none()


async def use_code(session: AsyncSession, code_id: str, now: datetime, agent_id: str) -> bool:
    """Mark the code used, once: True for the one caller that did."""
    result = await session.execute(
        update(PairingCode)
        .where(PairingCode.id == code_id, PairingCode.used_at.is_(None), PairingCode.expires_at > now)
        .values(used_at=now, agent_id=agent_id)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- jobs -------------------------------------------------------------------------------------
async def job(session: AsyncSession, job_id: str) -> DeskJob | None:
    return await session.get(DeskJob, job_id, populate_existing=True)


async def add_job(session: AsyncSession, row: DeskJob) -> None:
    session.add(row)
    await session.flush()


async def next_queued(session: AsyncSession, agent_id: str, now: datetime) -> DeskJob | None:
    result = await session.execute(
        select(DeskJob)
        .where(DeskJob.agent_id == agent_id, DeskJob.state == JobState.QUEUED.value, DeskJob.expires_at > now)
        .order_by(DeskJob.created_at)
        .limit(1)
    )
    return result.scalar_one_or_none()


async def transition_job(
    session: AsyncSession, job_id: str, *, expected: Iterable[JobState], to: JobState, **values: Any
) -> bool:
    result = await session.execute(
        update(DeskJob)
        .where(DeskJob.id == job_id, DeskJob.state.in_([s.value for s in expected]))
        .values(state=to.value, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def open_jobs_of(session: AsyncSession, agent_id: str, states: Iterable[JobState]) -> Sequence[DeskJob]:
    result = await session.execute(
        select(DeskJob).where(DeskJob.agent_id == agent_id, DeskJob.state.in_([s.value for s in states]))
    )
    return result.scalars().all()


# --- nonces -----------------------------------------------------------------------------------
async def remember_nonce(session: AsyncSession, nonce: str, agent_id: str, expires_at: datetime) -> bool:
    """Record a nonce; False if it was seen before (a replay). Runs in a savepoint of its own."""
    try:
        async with session.begin_nested():
            session.add(SeenNonce(nonce=nonce, agent_id=agent_id, expires_at=expires_at))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def forget_nonces(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(SeenNonce).where(SeenNonce.expires_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
