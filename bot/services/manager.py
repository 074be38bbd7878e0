"""The manager's part: confirming a request, and stopping a pass that looks wrong."""

from __future__ import annotations

from bot.directory import DirectoryError
from bot.domain.tap_request import ManagerStatus, RequestState
from bot.logs import get_logger
from bot.services import pass_modal, registration, tap_common
from bot.services.runtime import Runtime
from bot.slack import tap_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import tap_repo

log = get_logger(__name__)


async def answer(rt: Runtime, request_id: str, clicker: str, *, expected: bool) -> str:
    """The manager says whether they expect the request. Returns what to tell the clicker."""
    request = await tap_common.load(rt, request_id)
    if request is None or clicker != request.manager_slack_id:
        await rt.audit.record(
            "tap.manager.refused",
            actor=f"slack:{clicker}",
            target=f"request:{request_id}",
            outcome="refused",
            details={"reason": "not_the_manager"},
        )
        return "Only the person's manager can answer this."
    if request.manager_status != ManagerStatus.PENDING or request.state not in (
        RequestState.AWAITING_APPROVAL,
        RequestState.AWAITING_TARGET,
    ):
        return "This request has already moved on; thanks anyway."
    status = ManagerStatus.CONFIRMED if expected else ManagerStatus.REJECTED
    now = rt.clock.now()
    async with rt.db.session() as session:
        await tap_repo.set_fields(session, request_id, manager_status=status.value, manager_answered_at=now)
        if not expected:
            await tap_repo.transition(
                session,
                request_id,
                expected=[RequestState.AWAITING_APPROVAL, RequestState.AWAITING_TARGET],
                to=RequestState.CANCELLED,
                closed_at=now,
            )
            await rt.deadlines.cancel(f"tap-decide:{request_id}", session=session)
        await rt.audit.record(
            "tap.manager.answered",
            actor=f"slack:{clicker}",
            target=f"entra:{request.target_entra_id}",
            details={"request_id": request_id, "expected": expected},
            session=session,
        )
    updated = await tap_common.refresh(rt, request_id)
    if updated is not None and updated.manager_message_channel and updated.manager_message_ts:
        text, blocks = tap_views.manager_answered(updated)
        try:
            await rt.slack.update(
                PostedMessage(updated.manager_message_channel, updated.manager_message_ts), text, blocks
            )
        except SlackError as exc:
            log.warning("tap.manager.update_failed", error=exc.code)
    if not expected:
        await tap_common.alert(
            rt,
            f"<@{clicker}> says they did *not* expect <@{request.target_slack_id}>'s pass request. "
            "The request was cancelled; someone may be impersonating them.",
            loud=True,
            thread_of=request,
        )
        return "Thanks. I cancelled the request and alerted the helpdesk."
    return "Thanks for confirming. The helpdesk can see your answer."


async def looks_wrong(rt: Runtime, request_id: str, clicker: str) -> str:
    """After issuance: delete the pass, end the person's sessions, alert. Only the manager may press it."""
    request = await tap_common.load(rt, request_id)
    if request is None or clicker != request.manager_slack_id:
        await rt.audit.record(
            "tap.looks_wrong.refused",
            actor=f"slack:{clicker}",
            target=f"request:{request_id}",
            outcome="refused",
            details={"reason": "not_the_manager"},
        )
        return "Only the person's manager can use this button."
    user = request.target_entra_id
    deleted = 0
    revoked = False
    try:
        for tap in await rt.directory.list_taps(user):
            deleted += int(await rt.directory.delete_tap(user, tap.id))
        await rt.directory.revoke_sessions(user)
        revoked = True
    except DirectoryError as exc:
        log.error("tap.looks_wrong.partial", error=type(exc).__name__)
    now = rt.clock.now()
    async with rt.db.session() as session:
        await tap_repo.transition(
            session,
            request_id,
            expected=[
                RequestState.AWAITING_APPROVAL,
                RequestState.APPROVED,
                RequestState.ISSUING,
                RequestState.ISSUED,
            ],
            to=RequestState.REVOKED,
            closed_at=now,
            pass_view_id=None,
        )
        for key in ("tap-pass", "tap-approval", "tap-orphan", "tap-decide"):
            await rt.deadlines.cancel(f"{key}:{request_id}", session=session)
        await rt.audit.record(
            "tap.looks_wrong",
            actor=f"slack:{clicker}",
            target=f"entra:{user}",
            outcome="ok" if revoked else "failed",
            details={"request_id": request_id, "passes_deleted": deleted, "sessions_revoked": revoked},
            session=session,
        )
    await pass_modal.redact(rt, request.pass_view_id, "cancelled")
    await tap_common.refresh(rt, request_id)
    await registration.on_request_changed(rt, request_id)
    state = (
        "deleted the pass and ended their sign-in sessions"
        if revoked
        else ("tried to stop the pass, but Microsoft Entra didn't answer: act on it manually now")
    )
    await tap_common.alert(
        rt,
        f"<@{clicker}> flagged <@{request.target_slack_id}>'s pass as wrong. keydesk {state}.",
        loud=True,
        thread_of=request,
    )
    if revoked:
        return "Done: the pass is deleted, their sessions are ending, and the helpdesk is alerted."
    return "I couldn't reach Microsoft Entra to finish this. The helpdesk has been alerted to do it by hand."
