"""The wizard follows its request when that ends elsewhere (revoked, cancelled, expired), and expires."""

from __future__ import annotations

from bot.domain import wizard
from bot.domain.tap_request import RequestState
from bot.services.registration.rows import pair, save_latest
from bot.services.registration.screen import ENDED_BY_REQUEST, show
from bot.services.runtime import Runtime
from bot.store import wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard


async def on_request_changed(rt: Runtime, request_id: str) -> None:
    """Call after the request left ISSUED elsewhere (delivery.expire_pass, a revocation)."""
    row, request = await pair(rt, request_id=request_id)
    if row is not None and request is not None and row.live:
        await follow_request(rt, row, request)


async def follow_request(rt: Runtime, row: Wizard, request: TapRequest) -> bool:
    """Bring the wizard in line with its request; True when the wizard ended because of it."""
    state = RequestState(request.state)
    ended = ENDED_BY_REQUEST.get(state)
    if ended:
        now = rt.clock.now()
        async with rt.db.session() as session:
            await save_latest(session, row.id, lambda s: wizard.cancel(s, now), ended_reason=ended)
        await show(rt, row.id)
        return True
    if state is RequestState.PASS_EXPIRED and row.seen_request_state != state.value:
        async with rt.db.session() as session:
            await wizard_repo.set_fields(session, row.id, seen_request_state=state.value)
        await show(rt, row.id)  # "your pass ran out", while the watch keeps looking through the grace period
    return False


async def expire(rt: Runtime, row: Wizard) -> None:
    """The watch gave up (the pass ran out and the grace period passed): end the wizard and say so."""
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await save_latest(session, row.id, lambda s: wizard.expire(s, now), ended_reason="expired")
        if won:
            await rt.audit.record(
                "registration.expired",
                actor="system",
                target=f"entra:{row.user_entra_id}",
                details={"request_id": row.request_id},
                session=session,
            )
    await show(rt, row.id)
