"""What people see of a TAP request: the helpdesk card, the requester's DM, the manager's DM, the modals.

None of these ever receives a pass value, except `pass_modal`, which is shown only through views.update.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.domain.eligibility import CHECK_LABELS, STRONG_VERIFICATION_KEY, CheckName
from bot.domain.tap_request import ManagerStatus, RequestKind, RequestState
from bot.domain.text import escape_mrkdwn
from bot.secret import Secret
from bot.slack import blocks as b
from bot.slack.ids import Action, ViewId
from bot.store.models.tap_requests import TapRequest

KIND_LABEL = {
    RequestKind.ONBOARDING: "First security key",
    RequestKind.REPLACEMENT: "Replacement after a lost key",
    RequestKind.FORGOTTEN: "Key left at home: a pass for today",
    RequestKind.DESK_KEY: "Security key prepared at a desk",
}
MANAGER_LABEL = {
    ManagerStatus.NOT_REQUIRED: "not required",
    ManagerStatus.PENDING: ":hourglass: asked, no answer yet",
    ManagerStatus.CONFIRMED: ":white_check_mark: confirmed",
    ManagerStatus.REJECTED: ":x: said they did *not* expect this",
    ManagerStatus.UNAVAILABLE: ":grey_question: no manager reachable in Slack",
}
STATE_LABEL = {
    RequestState.AWAITING_TARGET: "Waiting for the person to confirm",
    RequestState.AWAITING_APPROVAL: "Waiting for approval",
    RequestState.APPROVED: "Approved: waiting for the person to reveal the pass",
    RequestState.ISSUING: "Creating the pass",
    RequestState.ISSUED: "Pass issued",
    RequestState.COMPLETED: "Completed: key registered, pass deleted",
    RequestState.DENIED: "Denied",
    RequestState.EXPIRED: "Expired",
    RequestState.PASS_EXPIRED: "Pass expired before a key was registered",
    RequestState.CANCELLED: "Cancelled",
    RequestState.REVOKED: "Revoked: pass deleted and sessions revoked",
}


TODAY_CARD_NOTE = (
    ":house: *A pass for today only.* Their key stays registered; it's at home. The pass lets them sign "
    "in today and no key setup follows."
)


def state_label(request: TapRequest) -> str:
    """The request's state in words; a pass for today ends with no key to register."""
    state = RequestState(request.state)
    if state is RequestState.PASS_EXPIRED and request.kind == RequestKind.FORGOTTEN:
        return "Pass for today ended (deleted)"
    if state is RequestState.REVOKED and request.kind == RequestKind.DESK_KEY:
        return "Stopped: the manager said this key looks wrong (see the thread for what was undone)"
    return STATE_LABEL[state]


def ts(when: datetime | None, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time Slack renders in each reader's own time zone."""
    if when is None:
        return "—"
    return f"<!date^{int(when.timestamp())}^{fmt}|{when:%Y-%m-%d %H:%M} UTC>"


def _age(request: TapRequest, now: datetime) -> str:
    minutes = int((now - request.created_at).total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def card(
    request: TapRequest, now: datetime, labels: dict[str, str] | None = None
) -> tuple[str, list[b.Block]]:
    """The helpdesk card: who, the evidence, each check, the manager's answer, and the decision."""
    profile = request.target_profile or {}
    state = RequestState(request.state)
    name = escape_mrkdwn(str(profile.get("display_name") or request.target_slack_id))
    desk_key = request.kind == RequestKind.DESK_KEY
    noun = "Security key" if desk_key else "Temporary Access Pass"
    text = f"{noun} request for {name}: {state_label(request)}"
    asked_by = (
        f"<@{request.requester_slack_id}> for themselves"
        if request.requester_slack_id == request.target_slack_id
        else f"<@{request.requester_slack_id}> (helpdesk) for <@{request.target_slack_id}>"
    )
    body: list[b.Block] = [
        b.header(
            f"{'Key' if desk_key else 'Pass'} request: {profile.get('display_name') or 'unknown'}"[:150]
        ),
        b.section(
            f"*{KIND_LABEL[RequestKind(request.kind)]}* · asked by {asked_by} · {_age(request, now)} ago"
        ),
        b.fields(
            [
                ("Entra user", escape_mrkdwn(f"{profile.get('display_name', '')}\n{profile.get('upn', '')}")),
                (
                    "Department / title",
                    escape_mrkdwn(f"{profile.get('department') or '—'}\n{profile.get('job_title') or '—'}"),
                ),
                ("Manager", escape_mrkdwn(str(profile.get("manager") or "none in Entra"))),
                ("Account created", ts(_parse(profile.get("created")), "{date_short_pretty}")),
                ("Manager confirmation", MANAGER_LABEL[ManagerStatus(request.manager_status)]),
                ("Status", state_label(request)),
            ]
        ),
        b.section("*Checks*\n" + "\n".join(_check_line(c) for c in request.checks or [])),
    ]
    if desk_key:
        from bot.slack import provision_views

        body.insert(2, b.section(provision_views.card_line(request)))
    if request.kind == RequestKind.FORGOTTEN:
        body.insert(2, b.context(TODAY_CARD_NOTE))
    from bot.slack import privileged_views  # the admin process for privileged accounts

    body.extend(privileged_views.card_status(request))
    if state is RequestState.AWAITING_APPROVAL:
        body.append(
            b.context(
                f"Decide by {ts(request.decide_by)}. You can't approve a request you opened or one for yourself."
            )
        )
        body.append(
            b.actions(
                b.button("Approve…", Action.TAP_APPROVE, value=request.id, style="primary"),
                b.button("Deny…", Action.TAP_DENY, value=request.id, style="danger"),
                block_id="tap_decision",
            )
        )
    elif request.decided_by_slack_id:
        verb = "Denied" if state is RequestState.DENIED else "Approved"
        how = (
            f" · verified by {escape_mrkdwn(request.verification_method)}"
            if request.verification_method
            else ""
        )
        note = f"\n>{escape_mrkdwn(request.decision_note)}" if request.decision_note else ""
        body.append(
            b.section(f"*{verb}* by <@{request.decided_by_slack_id}> {ts(request.decided_at)}{how}{note}")
        )
    body.extend(privileged_views.card_tail(request, now))
    if request.tap_expires_at and state in (
        RequestState.ISSUED,
        RequestState.COMPLETED,
        RequestState.PASS_EXPIRED,
    ):
        body.append(
            b.context(f"Pass revealed {request.reveal_count}× · valid until {ts(request.tap_expires_at)}")
        )
    return text, body


def _check_line(check: dict[str, Any]) -> str:
    icon = ":white_check_mark:" if check.get("passed") else ":no_entry:"
    if check.get("passed") and check.get(STRONG_VERIFICATION_KEY):  # passed, but needs a strong check
        icon = ":warning:"
    label = (
        CHECK_LABELS.get(CheckName(check["name"]), check["name"])
        if check.get("name") in CheckName.__members__.values()
        else check.get("name")
    )
    return f"{icon} {label}: {escape_mrkdwn(str(check.get('evidence', '')))}"


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


# --- The requester's DM ---------------------------------------------------------------------------
def dm_status(request: TapRequest, support: str) -> tuple[str, list[b.Block]]:
    """One DM message per request, updated in place as the request moves. No secret, ever."""
    if request.kind == RequestKind.DESK_KEY:
        from bot.slack import provision_views

        return provision_views.dm_status(request, support)
    state = RequestState(request.state)
    if state is RequestState.AWAITING_TARGET:
        text = "The helpdesk opened a Temporary Access Pass request for you. Did you ask for this?"
        return text, [
            b.section(
                f"<@{request.requester_slack_id}> from the helpdesk opened a request for a *Temporary Access "
                "Pass* for your account, to set up a security key.\n*Did you ask for this?* Nothing happens "
                "unless you confirm."
            ),
            b.actions(
                b.button("Yes, that's me", Action.TAP_TARGET_CONFIRM, value=request.id, style="primary"),
                b.button("No, I didn't ask", Action.TAP_TARGET_DECLINE, value=request.id, style="danger"),
            ),
        ]
    if state is RequestState.AWAITING_APPROVAL:
        text = "Your request is with the helpdesk."
        manager = (
            " I've also asked your manager to confirm."
            if request.manager_status == ManagerStatus.PENDING
            else ""
        )
        return text, [
            b.section(
                ":white_check_mark: Your account checks out, and I've sent your request to the helpdesk."
                f"{manager}\nSomeone will verify it's really you (usually by a quick video call with photo ID, "
                "or in person) and approve it. I'll message you here as soon as your pass is ready."
            ),
            b.context(
                f"Request {request.id[:8]} · if you didn't expect this, tell {escape_mrkdwn(support)}."
            ),
        ]
    if state in (RequestState.APPROVED, RequestState.ISSUING, RequestState.ISSUED):
        today = request.kind == RequestKind.FORGOTTEN
        text = "Your pass for today is ready." if today else "Your Temporary Access Pass is ready."
        detail = (
            f"You revealed it {request.reveal_count}×; it's valid until {ts(request.tap_expires_at)}. "
            "Revealing again creates a new pass and cancels the old one."
            if request.reveal_count
            else f"Reveal it when you're at your computer and ready {'to sign in' if today else 'to set up your key'} "
            f"(before {ts(request.approval_valid_until)})."
        )
        if today:
            detail += " It's for today only: your security key still works when you have it back."
        from bot.slack import privileged_views

        detail = privileged_views.dm_detail(request) or detail  # admin process: after the cooling-off
        return text, [
            b.section(f":key: *{text}*\n{detail}"),
            b.actions(b.button("Reveal pass", Action.TAP_REVEAL, value=request.id, style="primary")),
            b.context(
                "The pass is shown only to you, in a pop-up window. Never share it, not even with the helpdesk."
            ),
        ]
    if state is RequestState.DENIED:
        text = "Your request for a Temporary Access Pass was not approved."
        return text, [
            b.section(
                f"Your request wasn't approved. This usually means the helpdesk couldn't verify it was you. "
                f"Please contact {escape_mrkdwn(support)} to sort it out."
            )
        ]
    if state is RequestState.PASS_EXPIRED and request.kind == RequestKind.FORGOTTEN:
        return "Your pass for today has ended.", [
            b.section(
                ":hourglass: Your pass for today has ended, and I've deleted it. Your security key still "
                "works: sign in with it as usual when you have it back."
            )
        ]
    if state in (RequestState.EXPIRED, RequestState.PASS_EXPIRED):
        text = "Your Temporary Access Pass request has expired."
        why = (
            "Your pass ran out before a security key was registered, so I've deleted it."
            if state is RequestState.PASS_EXPIRED
            else "Your request wasn't completed in time, so I've closed it."
        )
        return text, [
            b.section(f":hourglass: {why} No problem, you can ask again."),
            b.actions(b.button("Ask again", Action.TAP_ASK_AGAIN, value=request.id)),
        ]
    if state is RequestState.COMPLETED:
        return "Your security key is set up.", [
            b.section(":tada: Your security key is set up and your pass is deleted.")
        ]
    if state is RequestState.REVOKED:
        text = "Your pass was cancelled for safety."
        return text, [
            b.section(
                ":rotating_light: Your pass was cancelled and your sign-ins were ended because someone flagged "
                f"the request as suspicious. Please contact {escape_mrkdwn(support)}."
            )
        ]
    if request.tap_id:  # closed after a pass was shown (e.g. the account was flagged at a later reveal)
        return "Your request was cancelled.", [
            b.section(
                f"Your request was cancelled and its pass deleted. Please contact {escape_mrkdwn(support)}."
            )
        ]
    return "Your request was cancelled.", [b.section("Your request was cancelled. Nothing was issued.")]


# --- Modals -----------------------------------------------------------------------------------------
def approve_modal(request: TapRequest, choices: dict[str, str], opened_at: datetime) -> dict[str, Any]:
    profile = request.target_profile or {}
    options = [{"text": b.plain(label), "value": key} for key, label in choices.items()]
    metadata = json.dumps({"request_id": request.id, "opened_at": opened_at.isoformat()})
    desk_key = request.kind == RequestKind.DESK_KEY
    what = "preparing a security key" if desk_key else "a Temporary Access Pass"
    return b.modal(
        "Approve key" if desk_key else "Approve pass",
        [
            b.section(
                f"Approve {what} for *{escape_mrkdwn(str(profile.get('display_name')))}* "
                f"({escape_mrkdwn(str(profile.get('upn')))})?\nOnly approve after you verified the person "
                "yourself. Knowledge questions (birthday, employee id) don't count."
            ),
            {
                "type": "input",
                "block_id": "verification",
                "label": b.plain("How did you verify the person?"),
                "element": {"type": "radio_buttons", "action_id": "method", "options": options},
            },
            {
                "type": "input",
                "block_id": "note",
                "optional": True,
                "label": b.plain("Note (optional)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
        callback_id=ViewId.TAP_APPROVE,
        submit="Approve",
        close="Cancel",
        private_metadata=metadata,
    )


def deny_modal(request: TapRequest) -> dict[str, Any]:
    profile = request.target_profile or {}
    return b.modal(
        "Deny pass",
        [
            b.section(f"Deny the request for *{escape_mrkdwn(str(profile.get('display_name')))}*?"),
            {
                "type": "input",
                "block_id": "reason",
                "label": b.plain("Reason (recorded in the audit log, not shown to the person)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
        callback_id=ViewId.TAP_DENY,
        submit="Deny",
        close="Cancel",
        private_metadata=json.dumps({"request_id": request.id}),
    )


def working_modal(message: str = "Creating your pass… this takes a few seconds.") -> dict[str, Any]:
    return b.modal("Your pass", [b.section(f":hourglass_flowing_sand: {message}")], close="Close")


def problem_modal(message: str) -> dict[str, Any]:
    return b.modal("Your pass", [b.section(message)], close="Close")


PASS_ENDED = {
    "expired": "This pass has expired, so I removed it from this window.",
    "replaced": "This pass was replaced by a new one, so it no longer works.",
    "cancelled": "This pass was cancelled, so it no longer works.",
    "registered": "Your security key is registered, so this pass was deleted. You won't need it again.",
}


def pass_ended_modal(why: str) -> dict[str, Any]:
    """What replaces a pass still on screen once it no longer works: never the value."""
    return b.modal("Your pass", [b.section(PASS_ENDED[why])], close="Close")


def pass_modal(
    value: Secret,
    expires_at: datetime,
    usable_once: bool,
    sign_in_url: str,
    first_step: str,
    *,
    for_today: bool = False,
) -> dict[str, Any]:
    """The only place a pass value ever goes: a modal, seen by its owner alone. `for_today`: a pass to
    sign in with while the key is at home (nothing to set up), instead of one to register a key."""
    once = "It works *once*." if usable_once else "You can use it more than once until it expires."
    if for_today:
        what = "Here is your *pass for today* (a Temporary Access Pass). Copy it now: I can't show this one again."
        how = (
            f"*Sign in* at <{sign_in_url}|{sign_in_url}> with your work email; when you're asked for your "
            "security key or password, choose to use a Temporary Access Pass and enter this one.\n"
            "Your security key still works: when you have it back, sign in with it as usual. "
            "There's nothing to set up."
        )
    else:
        what = "Here is your *Temporary Access Pass*. Copy it now: I can't show this one again."
        how = f"*First step:* {first_step}\nSign in at <{sign_in_url}|{sign_in_url}> with your work email and this pass."
    return b.modal(
        "Your pass",
        [
            b.section(what),
            {"type": "section", "block_id": "pass", "text": b.mrkdwn(f"```{value.reveal()}```")},
            b.section(f"Valid until *{ts(expires_at)}*. {once}"),
            b.section(how),
            b.context(
                "Never share this pass, not even with the helpdesk. Close this window when you're done."
            ),
        ],
        close="Done",
    )


# --- The manager's DM -------------------------------------------------------------------------------
def manager_question(request: TapRequest) -> tuple[str, list[b.Block]]:
    profile = request.target_profile or {}
    name = escape_mrkdwn(str(profile.get("display_name")))
    if request.kind == RequestKind.DESK_KEY:
        text = f"Did you expect the helpdesk to prepare a security key for {name}?"
        asked = f"The helpdesk is preparing a *security key* for *{name}* at a service desk."
    else:
        what = (
            "a *Temporary Access Pass* for today, having left their security key at home"
            if request.kind == RequestKind.FORGOTTEN
            else "a *Temporary Access Pass* to set up a security key"
        )
        text = f"Did you expect {name} to ask for a Temporary Access Pass?"
        asked = f"*{name}* asked for {what}."
    return text, [
        b.section(
            f"{asked} You're listed as their manager. *Do you expect this request?* "
            "If not, it might be someone pretending to be them."
        ),
        b.actions(
            b.button("Yes, I expect it", Action.MANAGER_CONFIRM, value=request.id, style="primary"),
            b.button("No, this looks wrong", Action.MANAGER_REJECT, value=request.id, style="danger"),
        ),
    ]


def manager_answered(request: TapRequest) -> tuple[str, list[b.Block]]:
    profile = request.target_profile or {}
    name = escape_mrkdwn(str(profile.get("display_name")))
    if request.manager_status == ManagerStatus.CONFIRMED:
        text = f"Thanks: you confirmed {name}'s request."
    else:
        text = f"Thanks: you said you did not expect {name}'s request. The helpdesk has been alerted."
    return text, [b.section(text)]


def manager_issued_notice(request: TapRequest) -> tuple[str, list[b.Block]]:
    profile = request.target_profile or {}
    name = escape_mrkdwn(str(profile.get("display_name")))
    text = f"A Temporary Access Pass was issued to {name}."
    return text, [
        b.section(
            f"For your information: a *Temporary Access Pass* was issued to *{name}* "
            f"(approved by <@{request.decided_by_slack_id}>), valid until {ts(request.tap_expires_at)}. "
            "If this looks wrong, press the button: I'll delete the pass, sign them out everywhere and alert "
            "the helpdesk."
        ),
        b.actions(
            b.button(
                "This looks wrong",
                Action.MANAGER_LOOKS_WRONG,
                value=request.id,
                style="danger",
                confirm=b.confirm_dialog(
                    "Stop this pass?",
                    f"This deletes {name}'s pass, ends their sign-in sessions and alerts the helpdesk.",
                    "Yes, stop it",
                ),
            )
        ),
    ]
