"""The admin process for privileged accounts: two approvals by different approvers, then a cooling-off.

Switched on by KEYDESK_ALLOW_PRIVILEGED_TARGETS (off: privileged accounts are refused outright; members of
KEYDESK_EXCLUDED_GROUP_IDS are refused either way). `approvals.approve` runs every ordinary approver
rule for each of the two approvers, then hands the decision here:

- approval 1 of 2 is a compare-and-set on the request while it still awaits approval;
- approval 2 of 2, by another Slack *and* Entra account, moves it to APPROVED with `reveal_not_before`
  = now + KEYDESK_PRIVILEGED_COOLING_OFF_MINUTES; a durable deadline tells the person when it is over;
- until then `delivery` refuses to reveal (see `reveal_problem`); a Deny stops it at any point before the
  pass is revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.admin_process import Approver, cooling_off_left, reveal_window, same_person
from bot.domain.tap_request import RequestState
from bot.logs import get_logger
from bot.services import tap_common
from bot.services.runtime import Runtime
from bot.slack import privileged_views as views
from bot.slack.messenger import SlackError
from bot.slack.tap_views import ts
from bot.store import privileged_repo
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)

COOLING_OFF_DEADLINE = "tap.cooling_off_over"
SAME_APPROVER = (
    "You already gave approval 1 of 2 for this request. A privileged account needs its second approval "
    "from a *different* approver."
)


@dataclass(frozen=True)
class Step:
    ok: bool
    message: str  # what the approver reads
    refusal: str | None = None  # the audit reason when refused


def applies(request: TapRequest) -> bool:
    return views.is_admin_process(request)


def same_approver_problem(request: TapRequest, slack_id: str, entra_id: str | None) -> str | None:
    """Refuse the person who gave approval 1 of 2 before anything else is asked of them."""
    if not applies(request) or request.first_approver_slack_id is None:
        return None
    first = Approver(request.first_approver_slack_id, request.first_approver_entra_id)
    return SAME_APPROVER if same_person(first, Approver(slack_id, entra_id)) else None


def verification_problem(rt: Runtime, request: TapRequest, method: str | None) -> str | None:
    """IDV-4 asks for IDV-1 on each approval: an approver of a privileged account must have checked the
    person themselves. 'Manager confirmed' is a click in Slack by the manager, so it doesn't count here
    (two Slack identities, the admin's and their manager's, must not be enough)."""
    strong = rt.settings.strong_verification_methods
    if not applies(request) or (method is not None and method in strong):
        return None
    if not strong:
        return (
            "No verification method is set as strong (KEYDESK_STRONG_VERIFICATION_METHODS), so a "
            "privileged account can't be approved."
        )
    names = ", ".join(rt.settings.verification_choices.get(m, m) for m in strong)
    return (
        "This is a privileged account: verify the person yourself before approving (one of: "
        f"{names}). The manager's confirmation in Slack isn't enough here."
    )


def deniable_states(request: TapRequest) -> list[RequestState]:
    """Any approver may stop a privileged request until its pass is revealed; others only before approval."""
    if applies(request):
        return [RequestState.AWAITING_APPROVAL, RequestState.APPROVED]
    return [RequestState.AWAITING_APPROVAL]


async def cancel_deadlines(rt: Runtime, request_id: str, session: AsyncSession) -> None:
    """A denied privileged request: nothing left to expire or announce."""
    await rt.deadlines.cancel(f"tap-approval:{request_id}", session=session)
    await rt.deadlines.cancel(f"tap-cooling:{request_id}", session=session)


def reveal_problem(request: TapRequest, now: datetime) -> str | None:
    """Delivery's gate: no pass before the cooling-off is over."""
    if not applies(request) or request.state != RequestState.APPROVED:
        return None
    if request.reveal_not_before is None:  # approved without its second approval: never
        return "This request still needs its second approval, so there's no pass to show yet."
    if cooling_off_left(request.reveal_not_before, now) is not None:
        return views.reveal_not_yet(request)
    return None


def _decided_message(request: TapRequest) -> str:
    state = RequestState(request.state)
    who = f" by <@{request.decided_by_slack_id}>" if request.decided_by_slack_id else ""
    return f"This request is no longer waiting for a decision: it was {state.value.replace('_', ' ')}{who}."


# --- Approvals --------------------------------------------------------------------------------------
async def approve(
    rt: Runtime,
    request: TapRequest,
    approver_slack_id: str,
    approver_entra: str,
    method: str | None,
    note: str,
    now: datetime,
) -> Step:
    """Approval 1 or 2 of 2, whichever this one turns out to be. The ordinary rules already passed."""
    won_first = False
    if request.first_approver_slack_id is None:
        async with rt.db.session() as session:
            won_first = await privileged_repo.record_first_approval(
                session,
                request.id,
                slack_id=approver_slack_id,
                entra_id=approver_entra,
                at=now,
                method=method,
                note=note or None,
            )
            if won_first:
                await rt.audit.record(
                    "tap.request.first_approval",
                    actor=f"slack:{approver_slack_id}",
                    target=f"entra:{request.target_entra_id}",
                    details={
                        "request_id": request.id,
                        "approval": "1 of 2",
                        "verification": method,
                        "note": note[:500],
                        "manager": request.manager_status,
                        "approver_entra": approver_entra,
                    },
                    session=session,
                )
    if won_first:
        await tap_common.refresh(rt, request.id, dm=False)
        return Step(
            True,
            "Approval 1 of 2 recorded. This is a privileged account: a *different* approver must verify the "
            "person and approve too, then a cooling-off delay runs before the pass can be revealed.",
        )
    # Approval 1 was given before, or just now by someone racing us: this may be approval 2.
    latest = await tap_common.load(rt, request.id)
    if latest is None:
        return Step(False, "I can't find that request.", "unknown_request")
    if same_approver_problem(latest, approver_slack_id, approver_entra):
        return Step(False, SAME_APPROVER, "same_approver")
    if latest.state != RequestState.AWAITING_APPROVAL:
        return Step(False, _decided_message(latest), "lost_race")
    return await _second(rt, latest, approver_slack_id, approver_entra, method, note, now)


async def _second(
    rt: Runtime,
    request: TapRequest,
    approver_slack_id: str,
    approver_entra: str,
    method: str | None,
    note: str,
    now: datetime,
) -> Step:
    from bot.services.approvals import APPROVAL_DEADLINE

    cooling = rt.settings.privileged_cooling_off_minutes
    window = reveal_window(now, cooling, rt.settings.approval_validity_minutes)
    async with rt.db.session() as session:
        won = await privileged_repo.record_second_approval(
            session,
            request.id,
            slack_id=approver_slack_id,
            entra_id=approver_entra,
            at=now,
            method=method,
            note=note or None,
            reveal_not_before=window.reveal_not_before,
            valid_until=window.valid_until,
        )
        if won:
            await rt.deadlines.cancel(f"tap-decide:{request.id}", session=session)
            await rt.deadlines.schedule(
                APPROVAL_DEADLINE,
                window.valid_until,
                {"request_id": request.id},
                key=f"tap-approval:{request.id}",
                replace=True,
                session=session,
            )
            if window.reveal_not_before > now:
                await rt.deadlines.schedule(
                    COOLING_OFF_DEADLINE,
                    window.reveal_not_before,
                    {"request_id": request.id},
                    key=f"tap-cooling:{request.id}",
                    replace=True,
                    session=session,
                )
            await rt.audit.record(
                "tap.request.approved",
                actor=f"slack:{approver_slack_id}",
                target=f"entra:{request.target_entra_id}",
                details={
                    "request_id": request.id,
                    "approval": "2 of 2",
                    "admin_process": True,
                    "verification": method,
                    "note": note[:500],
                    "manager": request.manager_status,
                    "approver_entra": approver_entra,
                    "first_approver": request.first_approver_slack_id,
                    "first_verification": request.first_verification_method,
                    "cooling_off_minutes": cooling,
                    "reveal_not_before": window.reveal_not_before.isoformat(),
                    "approval_valid_until": window.valid_until.isoformat(),
                },
                session=session,
            )
    if not won:
        latest = await tap_common.load(rt, request.id) or request
        if same_approver_problem(latest, approver_slack_id, approver_entra):
            return Step(False, SAME_APPROVER, "same_approver")
        return Step(False, _decided_message(latest), "lost_race")
    approved = await tap_common.refresh(rt, request.id)
    await _announce_cooling_off(rt, approved or request)
    return Step(
        True,
        "Approval 2 of 2 recorded: approved. The person can reveal their pass after the "
        f"{cooling}-minute cooling-off (from {ts(window.reveal_not_before)}). Until then anyone "
        "in the helpdesk can still stop it with *Stop: deny…* on the card.",
    )


async def _announce_cooling_off(rt: Runtime, request: TapRequest) -> None:
    """NIST 800-63B / IDV-4: the cooling-off begins by telling the person, also outside Slack."""
    text, blocks = views.cooling_off_started(request, rt.settings.support_contact)
    try:
        await rt.slack.post_dm(request.target_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("tap.cooling_off.dm_failed", request=request.id, error=exc.code)
    await tap_common.mail_person(
        rt,
        request,
        "A Temporary Access Pass was approved for your administrator account",
        views.mail_text(request),
        event="tap.cooling_off.mail_failed",
    )
    await tap_common.alert(
        rt,
        f"Privileged request for <@{request.target_slack_id}> approved by <@{request.first_approver_slack_id}> "
        f"and <@{request.decided_by_slack_id}>. Cooling-off until {ts(request.reveal_not_before)}; "
        "*Stop: deny…* on the card stops it until the pass is revealed.",
        thread_of=request,
    )
    await rt.audit.record(
        "tap.cooling_off.started",
        actor="system",
        target=f"entra:{request.target_entra_id}",
        details={
            "request_id": request.id,
            "reveal_not_before": request.reveal_not_before.isoformat() if request.reveal_not_before else None,
            "email": bool(rt.settings.notify_mailbox and (request.target_profile or {}).get("upn")),
        },
    )


# --- Filing and the deadline ------------------------------------------------------------------------
async def announce_filed(rt: Runtime, request: TapRequest) -> None:
    """A privileged account asked for a pass: a security alert in the helpdesk channel."""
    evidence = next(
        (str(c.get("evidence", "")) for c in request.checks or [] if c.get("name") == "not_privileged"), ""
    )
    await tap_common.alert(
        rt, views.filed_alert(request, evidence, rt.settings.privileged_cooling_off_minutes), loud=True
    )


async def cooling_off_over(rt: Runtime, request_id: str) -> None:
    """Deadline: the cooling-off ended. Tell the person (a new DM: an update wouldn't notify them)."""
    request = await tap_common.load(rt, request_id)
    if request is None or request.state != RequestState.APPROVED or request.reveal_count:
        return
    await rt.audit.record(
        "tap.cooling_off.ended",
        actor="system",
        target=f"entra:{request.target_entra_id}",
        details={"request_id": request_id},
    )
    text, blocks = views.revealable_now(request)
    try:
        await rt.slack.post_dm(request.target_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("tap.cooling_off.notice_failed", request=request_id, error=exc.code)
    await tap_common.refresh(rt, request_id, dm=False)
