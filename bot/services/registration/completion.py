"""Finishing: Entra shows the new method, so delete the pass, close the request and tell everyone."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.directory import AuthMethod, DirectoryError
from bot.domain import wizard
from bot.domain.guides import GuideMethod
from bot.domain.tap_request import RequestState
from bot.logs import get_logger
from bot.services import pass_modal, tap_common
from bot.services.registration.guides import library
from bot.services.registration.nudge import nudge_key
from bot.services.registration.pacing import poll_soon
from bot.services.registration.rows import pair, save_latest
from bot.services.registration.screen import show
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack import wizard_views
from bot.slack.messenger import SlackError
from bot.slack.wizard_views import FoundMethod
from bot.store import tap_repo, wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard

log = get_logger(__name__)


async def complete(rt: Runtime, wizard_id: str, method: AuthMethod) -> bool:
    """Entra shows the new method: delete the pass, close the request, tell everyone. True if this call won."""
    row, request = await pair(rt, wizard_id=wizard_id)
    if row is None or not row.live or request is None or request.state == RequestState.ISSUING:
        return False  # issuing: a new pass is being made right now; the next look finishes the job
    if request.tap_id and request.state == RequestState.ISSUED:
        # At once, before anything else. If Graph fails, nothing is recorded and the next look retries.
        await rt.directory.delete_tap(request.target_entra_id, request.tap_id)
    now = rt.clock.now()
    guide_method = library(rt).get(row.guide_id).method
    if not await _record(rt, row, request, method, guide_method, now):
        return False
    await pass_modal.redact(rt, request.pass_view_id, "registered")  # TAP-4: the pass no longer works
    await _announce(rt, row, request, FoundMethod(guide_method, method.model, method.display_name), now)
    return True


async def remember_pending(rt: Runtime, row: Wizard, method: AuthMethod) -> None:
    """Graph accepted a token but finishing failed (deleting the pass): the watch finishes it."""
    async with rt.db.session() as session:
        await wizard_repo.set_fields(
            session,
            row.id,
            method_id=method.id[:256],
            method_model=method.model,
            method_name=method.display_name,
        )
    await poll_soon(rt, row)


async def _record(
    rt: Runtime,
    row: Wizard,
    request: TapRequest,
    method: AuthMethod,
    guide_method: GuideMethod,
    now: datetime,
) -> bool:
    """In one transaction: the wizard completes, the request closes, its timers stop, the audit says so."""
    async with rt.db.session() as session:
        won = await save_latest(
            session,
            row.id,
            lambda s: wizard.complete(s, now),
            completed_at=now,
            method_id=method.id[:256],
            method_model=(method.model or "")[:200] or None,
            method_name=(method.display_name or "")[:200] or None,
        )
        if not won:
            return False
        closed = await tap_repo.transition(
            session,
            request.id,
            expected=RequestState.ISSUED,
            to=RequestState.COMPLETED,
            closed_at=now,
            pass_view_id=None,
        )
        for key in (f"tap-pass:{request.id}", nudge_key(request.id)):
            await rt.deadlines.cancel(key, session=session)
        await rt.audit.record(
            "registration.completed",
            actor="system",
            target=f"entra:{request.target_entra_id}",
            details={
                "request_id": request.id,
                "wizard_id": row.id,
                "method": guide_method.value,
                "method_id": method.id,
                "model": method.model,
                "name": method.display_name,
                "tap_id": request.tap_id,
                "request_closed": closed,
                "seconds_since_reveal": int((now - row.revealed_at).total_seconds()),
            },
            session=session,
        )
    return True


async def _announce(rt: Runtime, row: Wizard, request: TapRequest, found: FoundMethod, now: datetime) -> None:
    await show(rt, row.id)
    await tap_common.refresh(rt, request.id)
    if request.card_channel and request.card_ts:
        note = wizard_views.completion_note(
            row.user_slack_id, found, _minutes(now - row.revealed_at), _minutes(now - request.created_at)
        )
        try:
            await rt.slack.post(request.card_channel, note, [b.section(note)], thread_ts=request.card_ts)
        except SlackError as exc:
            log.warning("registration.card_note_failed", error=exc.code)
    from bot.services import conversation  # conversation shows home_blocks: import late, no cycle

    try:
        await conversation.refresh_home(rt, row.user_slack_id)
    except (SlackError, DirectoryError) as exc:
        log.info("registration.home_not_refreshed", error=type(exc).__name__)


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))
