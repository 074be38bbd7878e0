"""Reads and compare-and-set writes of setup wizards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.wizard import WizardState
from bot.store.models.deadlines import DeadlineRow, DeadlineState
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import LIVE_PHASES, Wizard


def state_of(row: Wizard) -> WizardState:
    return WizardState(
        guide_id=row.guide_id,
        phase=row.phase,  # type: ignore[arg-type]  # WizardState turns it into the enum
        step_index=row.step_index,
        step_count=row.step_count,
        started_at=row.started_at,
        step_started_at=row.step_started_at,
        stuck=row.stuck,
        version=row.version,
    )


def state_columns(state: WizardState) -> dict[str, Any]:
    return {
        "guide_id": state.guide_id,
        "phase": state.phase.value,
        "step_index": state.step_index,
        "step_count": state.step_count,
        "started_at": state.started_at,
        "step_started_at": state.step_started_at,
        "stuck": state.stuck,
        "version": state.version,
    }


async def get(session: AsyncSession, wizard_id: str) -> Wizard | None:
    return await session.get(Wizard, wizard_id, populate_existing=True)


async def for_request(session: AsyncSession, request_id: str) -> Wizard | None:
    result = await session.execute(
        select(Wizard).where(Wizard.request_id == request_id).execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def live_for_user(session: AsyncSession, user_slack_id: str) -> list[Wizard]:
    result = await session.execute(
        select(Wizard)
        .where(Wizard.user_slack_id == user_slack_id, Wizard.phase.in_(LIVE_PHASES))
        .order_by(Wizard.started_at.desc())
    )
    return list(result.scalars())


async def latest_for_user(session: AsyncSession, user_slack_id: str) -> Wizard | None:
    result = await session.execute(
        select(Wizard)
        .where(Wizard.user_slack_id == user_slack_id)
        .order_by(Wizard.started_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def helped_for_user(session: AsyncSession, user_slack_id: str) -> Wizard | None:
    """The person's live wizard that a helpdesk member has taken (their DMs are relayed)."""
    result = await session.execute(
        select(Wizard)
        .where(
            Wizard.user_slack_id == user_slack_id,
            Wizard.phase.in_(LIVE_PHASES),
            Wizard.helper_slack_id.is_not(None),
        )
        .order_by(Wizard.started_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def for_card_thread(session: AsyncSession, channel: str, thread_ts: str) -> Wizard | None:
    """The live wizard whose request's helpdesk card is the parent of this thread."""
    result = await session.execute(
        select(Wizard)
        .join(TapRequest, TapRequest.id == Wizard.request_id)
        .where(
            TapRequest.card_channel == channel,
            TapRequest.card_ts == thread_ts,
            Wizard.phase.in_(LIVE_PHASES),
        )
        .order_by(Wizard.started_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def watch_due(session: AsyncSession, key: str) -> datetime | None:
    """When the completion watch with this key looks next (None: not pending)."""
    result = await session.execute(
        select(DeadlineRow.due_at).where(
            DeadlineRow.key == key, DeadlineRow.state == DeadlineState.PENDING.value
        )
    )
    return result.scalar_one_or_none()


async def count_live(session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count()).select_from(Wizard).where(Wizard.phase.in_(LIVE_PHASES))
    )
    return int(result.scalar_one())


async def add(session: AsyncSession, wizard: Wizard) -> Wizard:
    """Insert; a second wizard for the same request raises IntegrityError (the caller reads the winner)."""
    session.add(wizard)
    await session.flush()
    return wizard


async def save(session: AsyncSession, wizard_id: str, state: WizardState, **values: Any) -> bool:
    """Store `state` (made by one transition from the stored one) only if nobody moved the wizard since."""
    result = await session.execute(
        update(Wizard)
        .where(Wizard.id == wizard_id, Wizard.version == state.version - 1)
        .values(**state_columns(state), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_fields(session: AsyncSession, wizard_id: str, **values: Any) -> None:
    """Bookkeeping that is not the wizard's state (message ts, polling, nudges): no version change."""
    await session.execute(
        update(Wizard)
        .where(Wizard.id == wizard_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def claim_helper(session: AsyncSession, wizard_id: str, helper_slack_id: str, **values: Any) -> bool:
    """Name the helper only while nobody has taken it: True for the one click that did."""
    result = await session.execute(
        update(Wizard)
        .where(Wizard.id == wizard_id, Wizard.helper_slack_id.is_(None), Wizard.phase.in_(LIVE_PHASES))
        .values(helper_slack_id=helper_slack_id, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_helper(session: AsyncSession, wizard_id: str, helper_slack_id: str) -> bool:
    result = await session.execute(
        update(Wizard)
        .where(Wizard.id == wizard_id, Wizard.helper_slack_id == helper_slack_id)
        .values(helper_slack_id=None, helped_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_once(session: AsyncSession, wizard_id: str, column: str, value: Any) -> bool:
    """Set `column` only while it is still NULL: True for the one caller that set it (a nudge sent once)."""
    field = getattr(Wizard, column)
    result = await session.execute(
        update(Wizard)
        .where(Wizard.id == wizard_id, field.is_(None))
        .values({column: value})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_oath_failure(session: AsyncSession, wizard_id: str) -> int:
    await session.execute(
        update(Wizard)
        .where(Wizard.id == wizard_id)
        .values(oath_failures=Wizard.oath_failures + 1)
        .execution_options(synchronize_session=False)
    )
    row = await get(session, wizard_id)
    return row.oath_failures if row else 0
