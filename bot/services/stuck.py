"""I'm stuck: a post in the request card's thread, a helpdesk member who takes it, and a relay both ways.

While someone has taken it, what that person writes in the card's thread goes to the user's DM, and what
the user writes in the DM goes back to the thread. Only the taker's messages are relayed: the rest of
the helpdesk can talk in the thread without the user reading along. Anything that looks like a pass,
PIN or code is never relayed from the user.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.domain import wizard
from bot.domain.text import clean
from bot.domain.wizard import WizardAction
from bot.logs import get_logger
from bot.services import approvals, registration, tap_common
from bot.services.approvals import Authority
from bot.services.runtime import Runtime
from bot.slack import wizard_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.slack.wizard_views import StuckFacts
from bot.store import wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard
from bot.store.wizard_repo import state_of

log = get_logger(__name__)

TAKING = "take a setup (your replies would reach the person as the helpdesk)"
_SECRET_WORDS = re.compile(r"\b(pin|pass|passcode|password|code|tap)\b", re.IGNORECASE)
_DIGITS = re.compile(r"(?<![\w.])\d{4,12}(?![\w.])")
_LETTERS, _NUMBERS = re.compile(r"[A-Za-z]"), re.compile(r"\d")


def looks_secret(text: str) -> bool:
    """A lone token shaped like a pass or PIN, or a number next to the word PIN / code / pass."""
    words = text.split()
    if len(words) == 1 and "://" not in words[0]:
        word = words[0].strip(".,!?")
        if word.isdigit() and 4 <= len(word) <= 12:
            return True
        mixed = bool(_LETTERS.search(word)) and bool(_NUMBERS.search(word) or not word.isalnum())
        if 8 <= len(word) <= 64 and mixed and not word.isalpha():
            return True
    return bool(_SECRET_WORDS.search(text) and _DIGITS.search(text))


# --- the user asks ------------------------------------------------------------------------------------
async def ask_for_help(rt: Runtime, user_id: str, value: str) -> None:
    """The user pressed I'm stuck: mark the step, and ask in the card's thread (who, where, how long)."""
    now = rt.clock.now()
    row = await registration.move(
        rt,
        user_id,
        value,
        lambda s, _row, at: wizard.stuck(s, at),
        action=WizardAction.STUCK,
        help_requested_at=now,
    )
    if row is None:
        return
    facts = _facts(rt, row, now)
    await rt.audit.record(
        "registration.stuck",
        actor=f"slack:{user_id}",
        target=f"entra:{row.user_entra_id}",
        details={
            "request_id": row.request_id,
            "guide": row.guide_id,
            "step": facts.progress,
            "minutes_on_step": facts.on_step_minutes,
        },
    )
    request = await tap_common.load(rt, row.request_id)
    posted = await _post_in_thread(rt, request, facts) if request else None
    if posted is None:
        await tap_common.tell(
            rt,
            user_id,
            f"I couldn't reach the helpdesk just now. Please contact {rt.settings.support_contact} directly.",
        )
        return
    async with rt.db.session() as session:
        await wizard_repo.set_fields(session, row.id, help_post_ts=posted.ts)


def _facts(rt: Runtime, row: Wizard, now: datetime) -> StuckFacts:
    state = state_of(row)
    lib = registration.library(rt)
    guide = lib.get(row.guide_id) if row.guide_id in {g.id for g in lib} else lib.default()
    step = wizard.current_step(state, guide) if guide.id == state.guide_id else None
    return StuckFacts(
        wizard_id=row.id,
        user_id=row.user_slack_id,
        guide_title=guide.title,
        progress=wizard.progress_label(state),
        step_title=step.title if step else None,
        on_step_minutes=int((now - state.step_started_at).total_seconds() // 60),
        total_minutes=int((now - state.started_at).total_seconds() // 60),
        helper_id=row.helper_slack_id,
        again=row.help_post_ts is not None,
    )


async def _post_in_thread(rt: Runtime, request: TapRequest, facts: StuckFacts) -> PostedMessage | None:
    channel = request.card_channel or rt.settings.helpdesk_channel
    if not channel:
        return None
    text, blocks = wizard_views.stuck_post(facts)
    try:
        return await rt.slack.post(channel, text, blocks, thread_ts=request.card_ts)
    except SlackError as exc:
        log.warning("registration.stuck_post_failed", error=exc.code)
        return None


# --- the helpdesk takes it ----------------------------------------------------------------------------
async def take(rt: Runtime, clicker: str, wizard_id: str, channel: str, message_ts: str) -> None:
    row = await registration.load(rt, wizard_id)
    problem = _take_problem(rt, row, clicker, channel)
    if problem is None:
        # The taker talks to the person as the helpdesk, in the bot's DM: being in the channel is not enough.
        _, problem = await approvals.authorise_approver(rt, clicker, None, Authority.EITHER, doing=TAKING)
    if problem or row is None:
        await rt.audit.record(
            "registration.help.refused",
            actor=f"slack:{clicker}",
            target=f"wizard:{wizard_id}",
            outcome="refused",
            details={"reason": problem or "unknown"},
        )
        await _whisper(rt, channel, clicker, problem or "I can't find that setup.")
        return
    async with rt.db.session() as session:
        won = await wizard_repo.claim_helper(session, row.id, clicker, helped_at=rt.clock.now())
        if won:
            await rt.audit.record(
                "registration.help.taken",
                actor=f"slack:{clicker}",
                target=f"entra:{row.user_entra_id}",
                details={"request_id": row.request_id, "step": row.step_index + 1},
                session=session,
            )
    if not won:
        current = await registration.load(rt, wizard_id)
        who = f"<@{current.helper_slack_id}>" if current and current.helper_slack_id else "Someone"
        await _whisper(rt, channel, clicker, f"{who} already took this one.")
        return
    await _repaint_post(rt, row.id, channel, message_ts)
    name = await _display(rt, clicker)
    await tap_common.tell(rt, row.user_slack_id, wizard_views.helper_named(name))
    await registration.show(rt, row.id)


def _take_problem(rt: Runtime, row: Wizard | None, clicker: str, channel: str) -> str | None:
    if row is None or not row.live:
        return "This setup is already over."
    if channel != rt.settings.helpdesk_channel:
        return "Take it from the helpdesk channel."
    if clicker == row.user_slack_id:
        return "You can't take your own setup; someone else from the helpdesk will."
    return None


async def release(rt: Runtime, clicker: str, wizard_id: str, channel: str, message_ts: str) -> None:
    """The helper is done: the relay stops and the user hears it."""
    row = await registration.load(rt, wizard_id)
    if row is None:
        return
    async with rt.db.session() as session:
        released = await wizard_repo.release_helper(session, row.id, clicker)
    if not released:
        await _whisper(rt, channel, clicker, "Only the person who took it can hand it back.")
        return
    await rt.audit.record(
        "registration.help.released",
        actor=f"slack:{clicker}",
        target=f"entra:{row.user_entra_id}",
        details={"request_id": row.request_id},
    )
    await _repaint_post(rt, row.id, channel, message_ts)
    if row.live:
        name = await _display(rt, clicker)
        await tap_common.tell(
            rt,
            row.user_slack_id,
            f"{name} has finished helping you. If you need more help, write *help* here.",
        )
        await registration.show(rt, row.id)


async def _repaint_post(rt: Runtime, wizard_id: str, channel: str, message_ts: str) -> None:
    row = await registration.load(rt, wizard_id)
    if row is None:
        return
    facts = replace(_facts(rt, row, rt.clock.now()), again=False)
    text, blocks = wizard_views.stuck_post(facts)
    try:
        await rt.slack.update(PostedMessage(channel, message_ts), text, blocks)
    except SlackError as exc:
        log.warning("registration.stuck_post_update_failed", error=exc.code)


async def _whisper(rt: Runtime, channel: str, user_id: str, text: str) -> None:
    try:
        await rt.slack.ephemeral(channel, user_id, text)
    except SlackError as exc:
        log.info("registration.ephemeral_failed", error=exc.code)


async def _display(rt: Runtime, user_id: str) -> str:
    try:
        return (await rt.slack.user(user_id)).display
    except SlackError:
        return "Someone from the helpdesk"


# --- the relay ----------------------------------------------------------------------------------------
async def relay_from_thread(rt: Runtime, event: dict[str, Any]) -> bool:
    """A message in a card's thread: if its author took that person's setup, pass it to their DM."""
    channel, thread_ts, author = event.get("channel"), event.get("thread_ts"), event.get("user")
    if channel != rt.settings.helpdesk_channel or not thread_ts or not author:
        return False
    async with rt.db.read() as session:
        row = await wizard_repo.for_card_thread(session, str(channel), str(thread_ts))
    if row is None or row.helper_slack_id != author:
        return False
    text = clean(event.get("text"), 2900)
    if not text:
        return False
    message, blocks = wizard_views.relayed_to_user(await _display(rt, str(author)), text)
    try:
        await rt.slack.post_dm(row.user_slack_id, message, blocks)
    except SlackError as exc:
        log.warning("registration.relay_failed", direction="to_user", error=exc.code)
        return False
    log.info("registration.relayed", direction="to_user", wizard=row.id)
    return True


async def relay_from_user(rt: Runtime, user_id: str, text: str) -> bool:
    """The user wrote in their DM while a helper has their setup: pass it to the thread (True: handled)."""
    async with rt.db.read() as session:
        row = await wizard_repo.helped_for_user(session, user_id)
    if row is None:
        return False
    request = await tap_common.load(rt, row.request_id)
    if request is None or not (request.card_channel and request.card_ts):
        return False
    text = clean(text, 2900)
    if not text:
        return True
    if looks_secret(text):
        await tap_common.tell(rt, user_id, wizard_views.secret_refused())
        log.info("registration.relay_refused", wizard=row.id)
        return True
    message, blocks = wizard_views.relayed_to_thread(user_id, text)
    try:
        await rt.slack.post(request.card_channel, message, blocks, thread_ts=request.card_ts)
    except SlackError as exc:
        log.warning("registration.relay_failed", direction="to_thread", error=exc.code)
        return False
    log.info("registration.relayed", direction="to_thread", wizard=row.id)
    return True
