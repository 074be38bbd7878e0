"""What people see of the admin process for privileged accounts: card lines, DMs, refusals. No secret, ever."""

from __future__ import annotations

from datetime import datetime

from bot.domain.admin_process import cooling_off_left
from bot.domain.tap_request import RequestState
from bot.domain.text import escape_mrkdwn
from bot.slack import blocks as b
from bot.slack.ids import Action
from bot.slack.tap_views import ts
from bot.store.models.tap_requests import TapRequest


def is_admin_process(request: TapRequest) -> bool:
    return (request.approvals_needed or 1) > 1


def approvals_given(request: TapRequest) -> int:
    return int(bool(request.first_approver_slack_id)) + int(bool(request.second_approver_slack_id))


def _first_line(request: TapRequest) -> str:
    how = (
        f" · verified by {escape_mrkdwn(request.first_verification_method)}"
        if request.first_verification_method
        else ""
    )
    note = f"\n>{escape_mrkdwn(request.first_approval_note)}" if request.first_approval_note else ""
    return f"approval 1 by <@{request.first_approver_slack_id}> {ts(request.first_approved_at)}{how}{note}"


# --- The helpdesk card ------------------------------------------------------------------------------
def card_status(request: TapRequest) -> list[b.Block]:
    """Above the decision: that this is the admin process, and how many approvals are in."""
    if not is_admin_process(request):
        return []
    given = approvals_given(request)
    lines = [
        ":rotating_light: *Privileged account: admin process.* Needs approvals from *2 different "
        "members of the privileged-approvers group*, each after verifying the person themselves; then a "
        "cooling-off delay before the pass can be revealed. Any approver can deny it.",
        f"*{given} of 2 approvals*"
        + (f": {_first_line(request)}" if request.first_approver_slack_id else ": none yet"),
    ]
    if request.state == RequestState.AWAITING_APPROVAL and request.first_approver_slack_id:
        lines.append(f"Waiting for a second approver (not <@{request.first_approver_slack_id}>).")
    if request.second_approver_slack_id and request.state == RequestState.DENIED:
        lines.append(
            f"Approval 2 by <@{request.second_approver_slack_id}>; then stopped before any pass existed."
        )
    return [b.section("\n".join(lines))]


def card_tail(request: TapRequest, now: datetime) -> list[b.Block]:
    """Below the decision: the cooling-off, and a way to stop the request until the pass is revealed."""
    if not is_admin_process(request) or request.reveal_not_before is None:
        return []
    state = RequestState(request.state)
    left = cooling_off_left(request.reveal_not_before, now)
    if state is RequestState.APPROVED and left is not None:
        line = (
            f":hourglass: Cooling-off: the person can reveal the pass from {ts(request.reveal_not_before)}."
        )
    elif state is RequestState.APPROVED:
        line = f"Cooling-off over since {ts(request.reveal_not_before)}: the person may reveal the pass now."
    else:
        line = f"Cooling-off until {ts(request.reveal_not_before)}."
    blocks: list[b.Block] = [b.context(line)]
    if state is RequestState.APPROVED:
        blocks.append(
            b.actions(
                b.button("Stop: deny…", Action.TAP_DENY, value=request.id, style="danger"),
                block_id="tap_stop",
            )
        )
    return blocks


def filed_alert(request: TapRequest, evidence: str, cooling_off_minutes: int) -> str:
    profile = request.target_profile or {}
    upn = escape_mrkdwn(str(profile.get("upn") or ""))
    return (
        f"<@{request.target_slack_id}> ({upn}) has a *privileged account* ({escape_mrkdwn(evidence)}) and "
        "asked for a Temporary Access Pass. Admin process: it needs approvals from *two different "
        "privileged approvers*, "
        f"each verifying the person in person or by video with photo ID, then a {cooling_off_minutes}-minute "
        "cooling-off before the pass can be revealed. If nobody expected this, deny it."
    )


# --- The person's DM --------------------------------------------------------------------------------
def dm_detail(request: TapRequest) -> str | None:
    """The 'ready' DM's detail while the person has not revealed yet and a cooling-off applies."""
    if not is_admin_process(request) or request.reveal_not_before is None or request.reveal_count:
        return None
    return (
        "Because your account has administrator rights, two approvers approved it and there's a cooling-off "
        f"period: you can reveal it from *{ts(request.reveal_not_before)}* until "
        f"{ts(request.approval_valid_until)}. I'll message you when it's time."
    )


def cooling_off_started(request: TapRequest, support: str) -> tuple[str, list[b.Block]]:
    text = "Your pass request was approved; it can be revealed after a cooling-off period."
    return text, [
        b.section(
            f":hourglass: *Two approvers approved your pass request.* Because your account has "
            f"administrator rights, there's a cooling-off period for your safety: you can reveal the pass "
            f"from *{ts(request.reveal_not_before)}*. I'll message you then."
        ),
        b.context(
            f"If you didn't ask for this, tell {escape_mrkdwn(support)} right away: they can stop it "
            "before any pass exists."
        ),
    ]


def revealable_now(request: TapRequest) -> tuple[str, list[b.Block]]:
    text = "Your pass can be revealed now."
    return text, [
        b.section(
            ":key: *Your pass can be revealed now.* The cooling-off is over. Reveal it when you're at your "
            f"computer and ready to set up your key (before {ts(request.approval_valid_until)})."
        ),
        b.actions(b.button("Reveal pass", Action.TAP_REVEAL, value=request.id, style="primary")),
    ]


def reveal_not_yet(request: TapRequest) -> str:
    return (
        "Not yet: your account has administrator rights, so for your safety there's a cooling-off period "
        f"after the approval. You can reveal your pass from *{ts(request.reveal_not_before)}*; "
        "I'll message you then."
    )


def mail_text(request: TapRequest) -> str:
    not_before = request.reveal_not_before
    when = f"{not_before:%Y-%m-%d %H:%M} UTC" if not_before else "after a cooling-off period"
    return (
        f"Two helpdesk approvers approved a Temporary Access Pass for your administrator account ({_plain(request)}). "
        f"It can be revealed in your Slack DM with keydesk from {when}. If this wasn't you, contact the "
        "helpdesk immediately: they can stop it before any pass exists."
    )


def _plain(request: TapRequest) -> str:
    profile = request.target_profile or {}
    return str(profile.get("upn") or request.target_entra_id)
