"""The person's clicks on the wizard: checked compare-and-set moves, Done / Back / a method, and Resume."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.domain import wizard
from bot.domain.guides import GuideMethod, UnknownGuideError
from bot.domain.wizard import WizardAction, WizardState, WizardTransitionError
from bot.logs import get_logger
from bot.services import tap_common
from bot.services.registration.guides import library
from bot.services.registration.pacing import poll_soon
from bot.services.registration.rows import load
from bot.services.registration.screen import show
from bot.services.runtime import Runtime
from bot.slack import wizard_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.slack.wizard_views import Preflight
from bot.store import wizard_repo
from bot.store.models.wizard import Wizard
from bot.store.wizard_repo import state_of

log = get_logger(__name__)

Step = Callable[[WizardState, Wizard, datetime], WizardState]


async def move(
    rt: Runtime, user_id: str, value: str, step: Step, *, action: WizardAction, **values: object
) -> Wizard | None:
    """Check a click on the wizard and apply one transition with compare-and-set.

    Returns the row after the move, or None when nothing moved (someone else's wizard, a stale button,
    a move that makes no sense now); the message is brought up to date either way.
    """
    try:
        wizard_id, version, _ = wizard_views.parse_value(value)
    except ValueError:
        return None
    row = await load(rt, wizard_id)
    if row is None or row.user_slack_id != user_id:
        await rt.audit.record(
            "registration.click.refused",
            actor=f"slack:{user_id}",
            target=f"wizard:{wizard_id}",
            outcome="refused",
            details={"action": action.value, "reason": "not_the_owner"},
        )
        return None
    if row.version != version or not row.live:
        await show(rt, wizard_id)
        return None
    now = rt.clock.now()
    try:
        new = step(state_of(row), row, now)
    except (WizardTransitionError, UnknownGuideError):
        await show(rt, wizard_id)
        return None
    async with rt.db.session() as session:
        won = await wizard_repo.save(session, wizard_id, new, **values)
    if won:
        await poll_soon(rt, row)
    await show(rt, wizard_id)
    return await load(rt, wizard_id) if won else None


async def press(rt: Runtime, user_id: str, action: WizardAction, value: str) -> None:
    """Done / Back / a method picked at the start."""
    if action is WizardAction.DONE:
        await move(rt, user_id, value, lambda s, _r, now: wizard.done(s, now), action=action)
    elif action is WizardAction.BACK:
        await move(rt, user_id, value, lambda s, _r, now: wizard.back(s, now), action=action)
    elif action is WizardAction.CHOOSE:
        moved = await move(rt, user_id, value, _chooser(rt, value), action=action)
        if moved is not None:
            await rt.audit.record(
                "registration.method_chosen",
                actor=f"slack:{user_id}",
                target=f"entra:{moved.user_entra_id}",
                details={"request_id": moved.request_id, "guide": moved.guide_id},
            )


def _chooser(rt: Runtime, value: str) -> Step:
    try:
        guide_id = wizard_views.parse_value(value)[2]
    except ValueError:
        guide_id = ""

    def step(state: WizardState, row: Wizard, now: datetime) -> WizardState:
        guide = library(rt).get(guide_id)
        if guide.method is GuideMethod.FIDO2 and Preflight.from_json(row.preflight).blocker:
            raise WizardTransitionError(WizardAction.CHOOSE, state, "FIDO2 is blocked for this person")
        return wizard.choose(state, guide, now)

    return step


async def resume(rt: Runtime, user_id: str) -> None:
    """Bring the person's setup back to the bottom of their DM (from App Home or the reminder)."""
    async with rt.db.read() as session:
        rows = await wizard_repo.live_for_user(session, user_id)
    if not rows:
        await tap_common.tell(
            rt, user_id, "You have no setup in progress. Press *Set up my security key* to start."
        )
        return
    row = rows[0]
    async with rt.db.session() as session:
        await wizard_repo.set_fields(session, row.id, channel=None, message_ts=None)
    await show(rt, row.id)
    if row.channel and row.message_ts:
        try:
            await rt.slack.delete(PostedMessage(row.channel, row.message_ts))
        except SlackError as exc:
            log.info("registration.old_message_kept", error=exc.code)
