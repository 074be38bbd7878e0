"""Starting the wizard after the reveal: one wizard per request, its first look and its nudge armed.

Not for a pass for today (RequestKind.FORGOTTEN): the person's key stays registered, they only need to
sign in while it is at home, so there is no guide, no completion watch and no nudge."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from bot.domain import wizard
from bot.domain.guides import GuideMethod
from bot.domain.tap_request import RequestKind, RequestState
from bot.services import tap_common
from bot.services.registration.guides import library
from bot.services.registration.nudge import schedule_nudge
from bot.services.registration.pacing import (
    FIRST_POLL_AFTER,
    MAX_INTERVAL,
    WATCH_DEADLINE,
    spacing,
    watch_key,
)
from bot.services.registration.preflight import baseline, preflight
from bot.services.registration.rows import pair, save_latest
from bot.services.registration.screen import show
from bot.services.runtime import Runtime
from bot.slack.messenger import SlackError
from bot.slack.wizard_views import Preflight
from bot.store import wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard


async def start_after_reveal(rt: Runtime, request_id: str) -> None:
    """The pass was just shown: post the wizard (or, after another reveal, refresh it with the new expiry)."""
    request = await tap_common.load(rt, request_id)
    if request is None or request.state != RequestState.ISSUED:
        return
    if request.kind == RequestKind.FORGOTTEN:
        return  # a pass for today: their key is registered, there is nothing to set up or watch for
    existing, _ = await pair(rt, request_id=request_id)
    if existing is not None:
        await _revealed_again(rt, existing, request)
        return
    await _close_older(rt, request.target_slack_id, request_id)
    row = await _create(rt, request)
    if row is None:
        return
    checked = Preflight.from_json(row.preflight)
    if checked.blocker and library(rt).get(row.guide_id).method is GuideMethod.FIDO2:
        await tap_common.alert(
            rt,
            f"<@{request.target_slack_id}> can't register a security key themselves: {checked.blocker}. "
            "They have a pass and can pick another method; please check the FIDO2 policy.",
            thread_of=request,
        )
    await show(rt, row.id)


async def _create(rt: Runtime, request: TapRequest) -> Wizard | None:
    now = rt.clock.now()
    checked = await preflight(rt, request.target_entra_id)
    known = await baseline(rt, request.target_entra_id)
    guide = library(rt).default()
    state = wizard.start(guide, now)
    # Spread first looks over a full interval: many reveals at once must not poll in one burst.
    spread = max(MAX_INTERVAL, await spacing(rt))
    first_poll = now + timedelta(seconds=FIRST_POLL_AFTER + random.uniform(0, spread))
    row = Wizard(
        id=_new_id(),
        request_id=request.id,
        user_slack_id=request.target_slack_id,
        user_entra_id=request.target_entra_id,
        **wizard_repo.state_columns(state),
        tz=await _tz(rt, request.target_slack_id),
        preflight=checked.to_json(),
        revealed_at=now,
        pass_expires_at=request.tap_expires_at,
        baseline_method_ids=known,
        oath_failures=0,
    )
    async with rt.db.session() as session:
        try:
            async with session.begin_nested():
                await wizard_repo.add(session, row)
        except IntegrityError:
            if await wizard_repo.for_request(session, request.id) is None:
                raise
            return None  # another reveal of the same request created it a moment ago
        payload = {"request_id": request.id}
        await rt.deadlines.schedule(
            WATCH_DEADLINE, first_poll, payload, key=watch_key(request.id), replace=True, session=session
        )
        await schedule_nudge(rt, session, request, now)
        await rt.audit.record(
            "registration.started",
            actor="system",
            target=f"entra:{request.target_entra_id}",
            details={
                "request_id": request.id,
                "guide": guide.id,
                "blocked": checked.blocker,
                "preflight_checked": checked.checked,
            },
            session=session,
        )
    return row


def _new_id() -> str:
    return str(uuid.uuid4())


async def _revealed_again(rt: Runtime, row: Wizard, request: TapRequest) -> None:
    """A new pass replaced the old one: same wizard, new expiry, a nudge for the new pass."""
    async with rt.db.session() as session:
        await wizard_repo.set_fields(session, row.id, pass_expires_at=request.tap_expires_at, nudged_at=None)
        await schedule_nudge(rt, session, request, rt.clock.now())
    await show(rt, row.id)


async def _close_older(rt: Runtime, user_id: str, request_id: str) -> None:
    async with rt.db.read() as session:
        older = [r for r in await wizard_repo.live_for_user(session, user_id) if r.request_id != request_id]
    now = rt.clock.now()
    for row in older:
        async with rt.db.session() as session:
            await save_latest(session, row.id, lambda s: wizard.cancel(s, now), ended_reason="replaced")
        await show(rt, row.id)


async def _tz(rt: Runtime, user_id: str) -> str | None:
    try:
        return (await rt.slack.user(user_id)).tz
    except SlackError:
        return None
