"""Rendering a wizard from the database into its one DM message (posting it the first time)."""

from __future__ import annotations

from bot.domain.guides import Guide, GuideLibrary, UnknownGuideError
from bot.domain.tap_request import RequestState
from bot.domain.wizard import WizardPhase, WizardState
from bot.logs import get_logger
from bot.services.registration.guides import library
from bot.services.registration.rows import load, pair
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack import wizard_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.slack.wizard_views import FoundMethod, Preflight, Screen
from bot.store import wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard
from bot.store.wizard_repo import state_of

log = get_logger(__name__)

ENDED_BY_REQUEST = {
    RequestState.REVOKED: "revoked",
    RequestState.CANCELLED: "cancelled",
    RequestState.DENIED: "cancelled",
    RequestState.EXPIRED: "cancelled",
}
_LIVE = {WizardPhase.CHOOSING.value, WizardPhase.IN_STEP.value, WizardPhase.WAITING_FOR_ENTRA.value}


async def show(rt: Runtime, wizard_id: str) -> None:
    """Render the wizard from the database into its DM message (posting it the first time)."""
    for _ in range(3):
        row, request = await pair(rt, wizard_id=wizard_id)
        if row is None:
            return
        text, blocks = wizard_views.wizard_message(await _screen(rt, row, request))
        if not await _put(rt, row, text, blocks):
            return
        again = await load(rt, wizard_id)
        if again is None or _fingerprint(again) == _fingerprint(row):
            return  # nobody changed it while we rendered; otherwise render the newer state


def _fingerprint(row: Wizard) -> tuple[object, ...]:
    return (row.version, row.helper_slack_id, row.pass_expires_at, row.seen_request_state, row.ended_reason)


async def _put(rt: Runtime, row: Wizard, text: str, blocks: list[b.Block]) -> bool:
    try:
        if row.channel and row.message_ts:
            try:
                await rt.slack.update(PostedMessage(row.channel, row.message_ts), text, blocks)
                return True
            except SlackError as exc:
                if exc.code != "message_not_found":
                    raise
        posted = await rt.slack.post_dm(row.user_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("registration.message_failed", wizard=row.id, error=exc.code)
        return False
    async with rt.db.session() as session:
        await wizard_repo.set_fields(session, row.id, channel=posted.channel, message_ts=posted.ts)
    return True


async def _screen(rt: Runtime, row: Wizard, request: TapRequest | None) -> Screen:
    lib = library(rt)
    until = wizard_views.local_time(row.pass_expires_at, row.tz)
    context = {"tap_expiry": until} if until else {}
    state, guide = _guide_for(lib, state_of(row), context)
    choosing = state.phase is WizardPhase.CHOOSING
    alternatives = tuple(lib.render(g.id, context) for g in lib.all() if g.id != guide.id) if choosing else ()
    found = None
    if state.phase is WizardPhase.COMPLETED:
        found = FoundMethod(guide.method, row.method_model, row.method_name)
    return Screen(
        wizard_id=row.id,
        state=state,
        guide=guide,
        alternatives=alternatives,
        preflight=Preflight.from_json(row.preflight),
        pass_until=until,
        ended=row.ended_reason or _ended_by(request),
        helper=await name(rt, row.helper_slack_id)
        if row.helper_slack_id and state.phase.value in _LIVE
        else None,
        found=found,
        sign_in_url=lib.org.sign_in_url,
        support=rt.settings.support_contact,
    )


def _guide_for(lib: GuideLibrary, state: WizardState, context: dict[str, str]) -> tuple[WizardState, Guide]:
    """The rendered guide; if an edit of the guides removed it since, show the default one instead."""
    try:
        return state, lib.render(state.guide_id, context)
    except UnknownGuideError:
        guide = lib.render(lib.default().id, context)
        count = len(guide.steps)
        shown = WizardState(
            guide.id,
            state.phase,
            min(state.step_index, count - 1),
            count,
            state.started_at,
            state.step_started_at,
            state.stuck,
            state.version,
        )
        return shown, guide


def _ended_by(request: TapRequest | None) -> str | None:
    if request is None:
        return None
    if request.state == RequestState.PASS_EXPIRED:
        return "expired"
    return ENDED_BY_REQUEST.get(RequestState(request.state))


async def name(rt: Runtime, user_id: str | None) -> str | None:
    """The person's display name for the wizard and App Home ("Someone" when Slack doesn't say)."""
    if not user_id:
        return None
    try:
        return (await rt.slack.user(user_id)).display
    except SlackError:
        return "Someone"
