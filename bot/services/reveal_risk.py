"""security.md IDV-5 at the reveal: the last look at Entra ID Protection before a pass is created.

The risk was read when the request was filed and again at the approval; an approval stays valid for up to
KEYDESK_APPROVAL_VALIDITY_MINUTES, and an account taken over in that time must not get the pass. A
flagged account's request is closed (a live pass from an earlier reveal is deleted), the helpdesk is
alerted loudly, and the person reads only "contact the helpdesk". When the risk can't be read, no pass is
created and the request stays as it was, so the person can try again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.directory import DirectoryError
from bot.domain import eligibility as rules
from bot.domain.eligibility import CheckResult
from bot.domain.tap_request import RequestState
from bot.logs import get_logger
from bot.services import pass_modal, registration, risk, tap_common
from bot.services.runtime import Runtime
from bot.store import tap_repo
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)

CHECK_DOWN = (
    "I couldn't check your account with Microsoft Entra just now, so I didn't create a pass: nothing was "
    "issued. Please press *Reveal pass* again in a minute."
)


async def refusal(rt: Runtime, request: TapRequest, clicker: str) -> str | None:
    """What the reveal modal says instead of a pass, or None when the pass may be created."""
    try:
        result = await risk.check(rt, request.target_entra_id)
    except DirectoryError as exc:
        log.warning("tap.reveal.risk_check_down", request=request.id, error=type(exc).__name__)
        await _refused(rt, request, clicker, "risk_check_down")
        return CHECK_DOWN
    if result.passed:
        return None
    if risk.unavailable(result):  # KEYDESK_RISK_CHECK=required and Graph refused the read
        await _refused(rt, request, clicker, "user_risk", evidence=result.evidence)
        return rules.contact_helpdesk(rt.settings.support_contact)
    await _close_flagged(rt, request, clicker, result)
    return rules.contact_helpdesk(rt.settings.support_contact)


async def _refused(
    rt: Runtime,
    request: TapRequest,
    clicker: str,
    reason: str,
    session: AsyncSession | None = None,
    **details: object,
) -> None:
    await rt.audit.record(
        "tap.reveal.refused",
        actor=f"slack:{clicker}",
        target=f"request:{request.id}",
        outcome="refused",
        details={"reason": reason, **details},
        session=session,
    )


async def _close_flagged(rt: Runtime, request: TapRequest, clicker: str, result: CheckResult) -> None:
    """Close the request (CANCELLED: the person reads no more than "contact the helpdesk"; a manager's
    REVOKED would tell them their sessions were ended) and delete a live pass."""
    deleted = 0
    if request.state == RequestState.ISSUED and request.tap_id:
        try:
            deleted = int(await rt.directory.delete_tap(request.target_entra_id, request.tap_id))
        except DirectoryError as exc:  # the helpdesk is told below to delete it by hand
            log.error("tap.reveal.flagged_pass_not_deleted", request=request.id, error=type(exc).__name__)
    async with rt.db.session() as session:
        closed = await tap_repo.transition(
            session,
            request.id,
            expected=[RequestState.APPROVED, RequestState.ISSUED],
            to=RequestState.CANCELLED,
            closed_at=rt.clock.now(),
            pass_view_id=None,
        )
        if closed:
            for key in ("tap-approval", "tap-orphan", "tap-pass"):
                await rt.deadlines.cancel(f"{key}:{request.id}", session=session)
        await _refused(
            rt,
            request,
            clicker,
            "user_risk",
            session,
            evidence=result.evidence,
            request_closed=closed,
            passes_deleted=deleted,
        )
    if request.state == RequestState.ISSUED:
        await pass_modal.redact(rt, request.pass_view_id, "cancelled")
    asked = f"<@{request.target_slack_id}> pressed *Reveal pass*"
    await risk.alert(rt, result, asked, thread_of=request, now=True)
    if request.state == RequestState.ISSUED and not deleted:
        await tap_common.alert(
            rt,
            f"The live pass of <@{request.target_slack_id}> could not be deleted just now: delete it in Entra.",
            loud=True,
            thread_of=request,
        )
    await tap_common.refresh(rt, request.id)
    await registration.on_request_changed(rt, request.id)
