"""Reads and writes of the pinned Slack <-> Entra links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models.identity import IdentityLink


async def link_for_slack_user(session: AsyncSession, slack_user_id: str) -> IdentityLink | None:
    return await session.get(IdentityLink, slack_user_id)


async def link_for_entra_user(session: AsyncSession, entra_object_id: str) -> IdentityLink | None:
    result = await session.execute(
        select(IdentityLink).where(IdentityLink.entra_object_id == entra_object_id)
    )
    return result.scalar_one_or_none()


async def pin(
    session: AsyncSession,
    *,
    slack_user_id: str,
    slack_team_id: str,
    entra_object_id: str,
    upn: str,
    email: str,
    now: datetime,
) -> IdentityLink:
    link = IdentityLink(
        slack_user_id=slack_user_id,
        slack_team_id=slack_team_id,
        entra_object_id=entra_object_id,
        user_principal_name=upn,
        email_at_pinning=email,
        pinned_at=now,
        last_verified_at=now,
    )
    session.add(link)
    await session.flush()
    return link


async def mark_verified(session: AsyncSession, slack_user_id: str, now: datetime) -> None:
    await session.execute(
        update(IdentityLink).where(IdentityLink.slack_user_id == slack_user_id).values(last_verified_at=now)
    )
