"""Reading a wizard (with its request) and saving a transition on the newest stored state."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.wizard import WizardState, WizardTransitionError
from bot.services.runtime import Runtime
from bot.store import tap_repo, wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard
from bot.store.wizard_repo import state_of


async def load(rt: Runtime, wizard_id: str) -> Wizard | None:
    async with rt.db.read() as session:
        return await wizard_repo.get(session, wizard_id)


async def pair(
    rt: Runtime,
    *,
    wizard_id: str | None = None,
    request_id: str | None = None,
) -> tuple[Wizard | None, TapRequest | None]:
    async with rt.db.read() as session:
        row = (
            await wizard_repo.get(session, wizard_id)
            if wizard_id
            else await wizard_repo.for_request(session, str(request_id))
        )
        request = await tap_repo.get(session, row.request_id) if row else None
    return row, request


async def save_latest(
    session: AsyncSession, wizard_id: str, step: Callable[[WizardState], WizardState], **values: object
) -> bool:
    """Apply `step` to the newest stored state, retrying when another writer got there first."""
    for _ in range(5):
        row = await wizard_repo.get(session, wizard_id)
        if row is None or not row.live:
            return False
        try:
            new = step(state_of(row))
        except WizardTransitionError:
            return False
        if await wizard_repo.save(session, wizard_id, new, **values):
            return True
    return False
