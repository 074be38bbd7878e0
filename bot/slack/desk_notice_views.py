"""What the manager and the person are told when a key is prepared in the person's name at a desk
(IDV-6 / G8), and after the manager says it looks wrong. None of these ever receives a PIN."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.text import escape_mrkdwn, safe
from bot.slack import blocks as b
from bot.slack.ids import Action
from bot.slack.provision_views import ts
from bot.store.models.tap_requests import TapRequest


def key_words(report: dict[str, Any] | None) -> str:
    """'YubiKey 5 NFC, serial 12345678' from the key facts the desk reported (plain text)."""
    report = report or {}
    model = safe(str(report.get("model") or report.get("product_name") or "Security key"), 100)
    serial = report.get("serial_number")
    return f"{model}, serial {safe(str(serial), 64)}" if serial else f"{model} (no serial exposed)"


def person_name(request: TapRequest) -> str:
    return safe(str((request.target_profile or {}).get("display_name") or "this person"), 100)


def manager_notice(
    request: TapRequest, *, key: str, desk: str, technician: str, at: datetime, pickup: bool
) -> tuple[str, list[b.Block]]:
    name = person_name(request)  # already cleaned and escaped
    where = "It waits at the desk for pickup." if pickup else "They were at the desk to set its PIN."
    text = f"A security key was prepared for {person_name(request)} at desk {desk}."
    return text, [
        b.section(
            f"For your information: <@{technician}> prepared a *security key* for *{name}* at desk "
            f"`{desk}` ({key}), approved by <@{request.decided_by_slack_id}>. "
            f"It was registered to their account {ts(at)}. {where}"
        ),
        b.section(
            "If this looks wrong, press the button: I'll remove the key from their account, sign them out "
            "everywhere, stop the key from being handed over and alert the helpdesk."
        ),
        b.actions(
            b.button(
                "This looks wrong",
                Action.DESK_LOOKS_WRONG,
                value=request.id,
                style="danger",
                confirm=b.confirm_dialog(
                    "Stop this key?",
                    f"This removes the key from {name}'s account, ends their sign-in sessions and alerts "
                    "the helpdesk.",
                    "Yes, stop it",
                ),
            )
        ),
    ]


def manager_flagged(outcome: str) -> tuple[str, list[b.Block]]:
    """The notice once the manager pressed the button: the outcome instead of the button."""
    return outcome, [b.section(f":rotating_light: You flagged this key. {outcome}")]


def person_stopped(desk: str, support: str) -> tuple[str, list[b.Block]]:
    text = "The security key prepared for you was stopped."
    return text, [
        b.section(
            f":rotating_light: Your manager said the security key prepared for you at desk "
            f"`{desk}` looks wrong, so I removed it from your account and signed you out "
            f"everywhere. If you did ask for it, contact {escape_mrkdwn(support)}."
        )
    ]


def pin_withdrawn() -> tuple[str, list[b.Block]]:
    text = "This key was stopped, so its PIN was deleted."
    return text, [b.section(":no_entry: This key was stopped before pickup, so I deleted its PIN.")]


def prepared_mail(key: str, desk: str, technician: str, at: datetime, support: str) -> tuple[str, str]:
    return (
        "A security key was registered to your account",
        f"A security key ({key}) was prepared for you by {technician} at the helpdesk desk {desk} and "
        f"registered to your account at {at:%Y-%m-%d %H:%M} UTC through keydesk. "
        f"If you didn't expect this, contact {support} immediately.",
    )


def stopped_mail(key: str, desk: str, support: str) -> tuple[str, str]:
    return (
        "A security key was removed from your account",
        f"Your manager reported the security key ({key}) prepared for you at the helpdesk desk {desk} as "
        "unexpected, so keydesk removed it from your account and signed you out everywhere. "
        f"If you did ask for it, contact {support}.",
    )
