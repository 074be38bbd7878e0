"""What people see of a key prepared at a desk: the technician's form, the person's DMs, the PIN modal.

None of these receives a PIN, except `pin_modal`, which is shown only through views.update to the
key's owner.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.domain.tap_request import RequestState
from bot.domain.text import escape_mrkdwn
from bot.secret import Secret
from bot.slack import blocks as b
from bot.slack.ids import Action, ViewId
from bot.store.models.desk_provisioning import PinMode
from bot.store.models.tap_requests import TapRequest

MODE_LABEL = {
    PinMode.AT_DESK: "At the desk: the person types their own PIN on the desk's screen",
    PinMode.PICKUP: "For pickup: a random PIN nobody at the desk sees; the person reveals it in Slack",
}
MODE_SHORT = {PinMode.AT_DESK: "typed by the person at the desk", PinMode.PICKUP: "random, for pickup"}


def ts(when: datetime | None) -> str:
    if when is None:
        return "—"
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def _desk(request: TapRequest) -> str:
    return escape_mrkdwn(str((request.target_profile or {}).get("desk") or "the helpdesk"))


def _mode(request: TapRequest) -> PinMode | None:
    raw = str((request.target_profile or {}).get("pin_mode") or "")
    return PinMode(raw) if raw in PinMode.__members__.values() else None


# --- the helpdesk card (one line added to the TAP card) -------------------------------------------
def card_line(request: TapRequest) -> str:
    mode = _mode(request)
    return (
        f":key: Security key prepared at desk `{_desk(request)}` · PIN "
        f"{MODE_SHORT[mode] if mode else 'unknown'} · no Temporary Access Pass is issued"
    )


# --- the person's status DM ------------------------------------------------------------------------
def dm_status(request: TapRequest, support: str) -> tuple[str, list[b.Block]]:
    """One DM per request, updated in place. No PIN, ever (that comes in its own message and modal)."""
    state = RequestState(request.state)
    desk = _desk(request)
    mode = _mode(request)
    contact = escape_mrkdwn(support)
    if state is RequestState.AWAITING_APPROVAL:
        text = "The helpdesk is preparing a security key for you."
        return text, [
            b.section(
                f":key: <@{request.requester_slack_id}> from the helpdesk is preparing a *security key* for "
                f"your account at desk `{desk}`. A second helpdesk approver checks the request first."
            ),
            b.context(f"Request {request.id[:8]} · if you didn't expect this, tell {contact} right away."),
        ]
    if state in (RequestState.APPROVED, RequestState.ISSUING):
        where = (
            "When the desk's screen asks, type the PIN you want for your key, twice."
            if mode is PinMode.AT_DESK
            else "It gets a random PIN that only you will be able to see, here in Slack."
        )
        return "Your security key is being prepared.", [
            b.section(f":hourglass_flowing_sand: Approved: desk `{desk}` is preparing your key now. {where}")
        ]
    if state is RequestState.ISSUED:
        return "Your security key is registered; the desk is finishing it.", [
            b.section(
                f":white_check_mark: Your new key is registered to your account; desk `{desk}` is finishing it."
            )
        ]
    if state is RequestState.COMPLETED:
        if mode is PinMode.PICKUP:
            text = f"Your security key is ready for pickup at desk {desk}."
            more = "Its PIN is in a separate message: press *Reveal PIN* there when you pick the key up."
        else:
            text = f"Your security key is ready at desk {desk}."
            more = "Use the PIN you typed at the desk."
        return text, [
            b.section(
                f":tada: *Your security key is ready* at desk `{desk}` and registered to your account. {more} "
                "The first time you use the key it asks you to choose a new PIN."
            ),
            b.context(f"If you didn't expect a key, tell {contact} right away."),
        ]
    if state is RequestState.DENIED:
        return "The security key request was not approved.", [
            b.section(f"The helpdesk's request to prepare a key for you wasn't approved. Contact {contact}.")
        ]
    if state is RequestState.EXPIRED:
        return "The security key request expired.", [
            b.section(
                ":hourglass: The request to prepare a key for you wasn't approved in time, so I closed it."
            )
        ]
    if state is RequestState.REVOKED:
        return "The security key request was stopped.", [
            b.section(
                f":rotating_light: The key request was stopped as suspicious. Please contact {contact}."
            )
        ]
    return "Your security key could not be prepared.", [
        b.section(
            "The key couldn't be prepared this time, and nothing was added to your account. "
            "The helpdesk knows why and will try again with you."
        )
    ]


# --- the PIN --------------------------------------------------------------------------------------
def pin_message(request_id: str, desk: str, destroy_at: datetime) -> tuple[str, list[b.Block]]:
    text = "The PIN of your new security key is ready to reveal."
    return text, [
        b.section(
            f":lock: Your new security key at desk `{escape_mrkdwn(desk)}` has a random PIN nobody at the "
            f"desk has seen. Reveal it when you have the key in hand: you can see it *once*, until {ts(destroy_at)}."
        ),
        b.actions(b.button("Reveal PIN", Action.DESK_PIN_REVEAL, value=request_id, style="primary")),
        b.context(
            "The PIN is shown only to you, in a pop-up window. Never share it, not even with the helpdesk."
        ),
    ]


def pin_gone_message(revealed_at: datetime | None) -> tuple[str, list[b.Block]]:
    if revealed_at is not None:
        text = "You revealed the PIN of your security key; keydesk has deleted it."
        return text, [
            b.section(f":white_check_mark: You revealed this PIN {ts(revealed_at)}. keydesk deleted it.")
        ]
    text = "The PIN of your security key was deleted unrevealed after 24 hours."
    return text, [
        b.section(
            ":hourglass: The PIN of your new key was not revealed within 24 hours, so I deleted it. "
            "Ask the helpdesk to reset the key and prepare it again."
        )
    ]


def working_modal() -> dict[str, Any]:
    return b.modal("Your key's PIN", [b.section(":hourglass_flowing_sand: Opening…")], close="Close")


def problem_modal(message: str) -> dict[str, Any]:
    return b.modal("Your key's PIN", [b.section(message)], close="Close")


def pin_modal(pin: Secret, desk: str) -> dict[str, Any]:
    """The only place a desk PIN ever goes: a modal its owner opened."""
    return b.modal(
        "Your key's PIN",
        [
            b.section(
                f"This is the PIN of the security key prepared for you at desk `{escape_mrkdwn(desk)}`:"
            ),
            {"type": "section", "block_id": "pin", "text": b.mrkdwn(f"```{pin.reveal()}```")},
            b.section(
                "*The first time you use the key it asks you to change this PIN*: type this one, then choose "
                "your own. I've deleted it from keydesk, so I can't show it again."
            ),
            b.context(
                "Never share this PIN, not even with the helpdesk. Close this window when you're done."
            ),
        ],
        close="Done",
    )


# --- the technician's form -------------------------------------------------------------------------
def provision_modal(
    desks: list[str], *, desk: str | None = None, user: str | None = None, channel: str | None = None
) -> dict[str, Any]:
    desk_options = [{"text": b.plain(name[:75]), "value": name[:75]} for name in desks[:100]]
    desk_element: dict[str, Any] = {"type": "static_select", "action_id": "desk", "options": desk_options}
    if desk in desks:
        desk_element["initial_option"] = {"text": b.plain(desk[:75]), "value": desk[:75]}
    user_element: dict[str, Any] = {"type": "users_select", "action_id": "user"}
    if user:
        user_element["initial_user"] = user
    modes = [{"text": b.plain(MODE_LABEL[m][:75]), "value": m.value} for m in PinMode]
    return b.modal(
        "Prepare a key",
        [
            b.section(
                "Prepare a security key for someone at a desk agent. A second approver must approve it, "
                "then the desk creates the passkey and Entra registers it."
            ),
            {"type": "input", "block_id": "desk", "label": b.plain("Desk"), "element": desk_element},
            {"type": "input", "block_id": "user", "label": b.plain("For whom?"), "element": user_element},
            {
                "type": "input",
                "block_id": "mode",
                "label": b.plain("PIN"),
                "element": {"type": "radio_buttons", "action_id": "mode", "options": modes},
            },
        ],
        callback_id=ViewId.DESK_PROVISION,
        submit="Ask for approval",
        close="Cancel",
        private_metadata=json.dumps({"channel": channel}) if channel else "",
    )


def read_form(view: dict[str, Any]) -> tuple[str, str, str] | dict[str, str]:
    values = (view.get("state") or {}).get("values") or {}
    desk = ((values.get("desk", {}).get("desk") or {}).get("selected_option") or {}).get("value")
    user = (values.get("user", {}).get("user") or {}).get("selected_user")
    mode = ((values.get("mode", {}).get("mode") or {}).get("selected_option") or {}).get("value")
    errors = {}
    if not desk:
        errors["desk"] = "Choose the desk."
    if not user:
        errors["user"] = "Pick the person."
    if mode not in PinMode.__members__.values():
        errors["mode"] = "Choose how the PIN is set."
    if errors:
        return errors
    return str(desk)[:64], str(user)[:32], str(mode)


def form_channel(view: dict[str, Any]) -> str | None:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    channel = data.get("channel") if isinstance(data, dict) else None
    return str(channel)[:32] if channel else None


def result_modal(message: str) -> dict[str, Any]:
    return b.modal("Prepare a key", [b.section(message)], close="Close")
