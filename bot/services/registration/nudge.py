"""The one reminder shortly before the pass runs out, if Entra shows nothing yet: schedule and send it."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.deadlines import Deadline
from bot.domain import wizard
from bot.domain.tap_request import RequestState
from bot.logs import get_logger
from bot.services.registration.guides import step_title
from bot.services.registration.rows import pair
from bot.services.runtime import Runtime
from bot.slack import wizard_views
from bot.slack.messenger import SlackError
from bot.store import wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.wizard_repo import state_of

log = get_logger(__name__)

NUDGE_DEADLINE = "registration.nudge"
NUDGE_BEFORE = timedelta(minutes=10)


def nudge_key(request_id: str) -> str:
    return f"wizard-nudge:{request_id}"


async def schedule_nudge(rt: Runtime, session: AsyncSession, request: TapRequest, now: datetime) -> None:
    expires = request.tap_expires_at
    if expires is None:
        return
    due = max(expires - NUDGE_BEFORE, now + (expires - now) / 2)
    if due > now:
        await rt.deadlines.schedule(
            NUDGE_DEADLINE,
            due,
            {"request_id": request.id},
            key=nudge_key(request.id),
            replace=True,
            session=session,
        )


async def send_nudge(rt: Runtime, deadline: Deadline) -> None:
    """Once, shortly before the pass runs out, if Entra shows nothing yet."""
    row, request = await pair(rt, request_id=str(deadline.payload["request_id"]))
    if row is None or request is None or not row.live or request.state != RequestState.ISSUED:
        return
    now = rt.clock.now()
    expires = row.pass_expires_at or request.tap_expires_at
    if expires is None or expires <= now or row.nudged_at is not None:
        return
    async with rt.db.session() as session:
        if not await wizard_repo.claim_once(session, row.id, "nudged_at", now):
            return
    state = state_of(row)
    text, blocks = wizard_views.nudge_message(
        row.id,
        wizard.progress_label(state),
        step_title(rt, row),
        wizard_views.local_time(expires, row.tz),
        math.ceil((expires - now).total_seconds() / 60),
    )
    try:
        await rt.slack.post_dm(row.user_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("registration.nudge_failed", error=exc.code)
        return
    await rt.audit.record(
        "registration.nudged",
        actor="system",
        target=f"slack:{row.user_slack_id}",
        details={"request_id": row.request_id, "step": state.step_index + 1},
    )
