"""What people see of a lost-key report: the form, the confirmation, the results, the notices.

Pure builders. The modal carries only the report's opaque id in `private_metadata`; method ids appear
as checkbox values (they are the user's own, and every submitted id is re-checked against Entra).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.directory import AuthMethod, MethodKind
from bot.domain.method_names import METHOD_LABELS
from bot.domain.text import clean, safe
from bot.slack import blocks as b
from bot.slack.ids import Action, ViewId
from bot.slack.tap_views import ts
from bot.store.models.lost_reports import (
    LostReason,
    LostReport,
    MethodEntry,
    ReportState,
    StepOutcome,
    entries,
)

TITLE = "Lost key"
MAX_OPTIONS = 10  # Slack's limit for one checkbox group
MAX_PICKED = 20
NOTE_MAX = 500
# Kinds keydesk may remove; the password, passes and e-mail are managed elsewhere.
REMOVABLE = (
    MethodKind.FIDO2,
    MethodKind.WINDOWS_HELLO,
    MethodKind.PLATFORM_CREDENTIAL,
    MethodKind.AUTHENTICATOR,
    MethodKind.PHONE,
    MethodKind.SOFTWARE_OATH,
    MethodKind.HARDWARE_OATH,
)
REASON_LABEL = {
    LostReason.LOST: "I lost it",
    LostReason.STOLEN: "It was stolen",
    LostReason.BROKEN: "It's broken",
    LostReason.AT_HOME: "I left it at home today",
}
REASON_WORD = {
    LostReason.LOST: "lost",
    LostReason.STOLEN: "stolen",
    LostReason.BROKEN: "broken",
    LostReason.AT_HOME: "left at home",
}


class Field(StrEnum):
    """Block ids of the form's inputs (each input's action id is `PICK` or `TEXT`)."""

    KEYS = "lost_keys"
    OTHERS = "lost_others"
    REASON = "lost_reason"
    NOTE = "lost_note"


PICK = "picked"
TEXT = "text"


@dataclass(frozen=True)
class Reader:
    """Who reads a text: the target ("you") or someone else, e.g. the approver ("Morgan's")."""

    name: str
    is_target: bool

    @property
    def you(self) -> str:
        return "you" if self.is_target else self.name

    @property
    def subject(self) -> str:  # `you` at the start of a sentence
        return "You" if self.is_target else self.name

    @property
    def has(self) -> str:
        return "have" if self.is_target else "has"

    @property
    def your(self) -> str:
        return "your" if self.is_target else f"{self.name}'s"


def reader_for(report: LostReport, slack_id: str) -> Reader:
    return Reader(safe(report.target_name, 100), slack_id == report.target_slack_id)


# --- choosing ---------------------------------------------------------------------------------------
def removable(methods: list[AuthMethod]) -> tuple[list[AuthMethod], list[AuthMethod]]:
    """Security keys first, then every other method keydesk can remove, each group oldest first."""
    keys = [m for m in methods if m.kind is MethodKind.FIDO2]
    others = [m for m in methods if m.kind in REMOVABLE and m.kind is not MethodKind.FIDO2]
    order = {kind: i for i, kind in enumerate(REMOVABLE)}

    def oldest(m: AuthMethod) -> tuple[int, str]:
        return order[m.kind], m.created.isoformat() if m.created else ""

    return sorted(keys, key=oldest), sorted(others, key=oldest)


KIND_NOUN = {
    MethodKind.FIDO2: "security key",
    MethodKind.WINDOWS_HELLO: "Windows Hello",
    MethodKind.PLATFORM_CREDENTIAL: "passkey",
    MethodKind.AUTHENTICATOR: "Microsoft Authenticator",
    MethodKind.PHONE: "phone",
    MethodKind.SOFTWARE_OATH: "authenticator app code",
    MethodKind.HARDWARE_OATH: "hardware token",
}


def method_title(kind: MethodKind | str, name: str | None, detail: str | None = None) -> str:
    """How a method is named in sentences: 'YubiKey 5 NFC (security key)', '+1 ****00 (mobile phone)'."""
    known = MethodKind(kind) if kind in MethodKind.__members__.values() else MethodKind.OTHER
    if known is MethodKind.PHONE:
        return f"{clean(detail, 40) or 'phone'} ({clean(name, 20) or 'mobile'} phone)"
    noun = KIND_NOUN.get(known, "sign-in method")
    own = clean(name or detail or "", 60)
    return f"{own} ({noun})" if own else noun[:1].upper() + noun[1:]


def _option(method: AuthMethod) -> dict[str, Any]:
    text = clean(method.display_name, 70) or METHOD_LABELS.get(method.kind, "Other method")
    parts = [METHOD_LABELS.get(method.kind, "Other method")]
    if method.model and method.model != method.display_name:
        parts.append(clean(method.model, 40))
    if method.detail:
        parts.append(clean(method.detail, 30))
    if method.created:
        parts.append(f"added {method.created:%d %b %Y}")
    description = " · ".join(parts)
    return {
        "text": b.plain(text[:75]),
        "description": b.plain(description[:75]),
        "value": method.id[:150],
    }


def _checkboxes(field: Field, label: str, methods: list[AuthMethod]) -> b.Block:
    return {
        "type": "input",
        "block_id": field.value,
        "optional": True,
        "label": b.plain(label),
        "element": {
            "type": "checkboxes",
            "action_id": PICK,
            "options": [_option(m) for m in methods[:MAX_OPTIONS]],
        },
    }


def form_modal(report_id: str, methods: list[AuthMethod], reader: Reader) -> dict[str, Any]:
    keys, others = removable(methods)
    body: list[b.Block] = [
        b.section(
            f"Which of {reader.your} sign-in methods should I switch off? Tick only what is lost, stolen or "
            "broken: I remove exactly those and nothing else."
        )
    ]
    if keys:
        body.append(_checkboxes(Field.KEYS, "Security keys", keys))
    if others:
        body.append(_checkboxes(Field.OTHERS, "Other sign-in methods", others))
    if len(keys) > MAX_OPTIONS or len(others) > MAX_OPTIONS:
        body.append(b.context("Not every method fits here; the helpdesk can remove the others."))
    body += [
        {
            "type": "input",
            "block_id": Field.REASON.value,
            "label": b.plain("What happened?"),
            "element": {
                "type": "radio_buttons",
                "action_id": PICK,
                "options": [{"text": b.plain(label), "value": r.value} for r, label in REASON_LABEL.items()],
            },
        },
        {
            "type": "input",
            "block_id": Field.NOTE.value,
            "optional": True,
            "label": b.plain("Anything the helpdesk should know? (optional)"),
            "element": {
                "type": "plain_text_input",
                "action_id": TEXT,
                "multiline": True,
                "max_length": NOTE_MAX,
            },
        },
        b.context(
            "Left it at home? Nothing is removed; I'll offer a pass for today instead. "
            "Otherwise you'll see exactly what will happen before anything changes."
        ),
    ]
    return b.modal(
        TITLE,
        body,
        callback_id=ViewId.LOST_KEY_FORM,
        submit="Next",
        close="Cancel",
        private_metadata=metadata(report_id),
    )


@dataclass(frozen=True)
class FormInput:
    report_id: str
    reason: LostReason
    method_ids: tuple[str, ...]
    note: str


def metadata(report_id: str) -> str:
    return json.dumps({"report": report_id})


def report_id_of(view: dict[str, Any]) -> str:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return ""
    value = data.get("report") if isinstance(data, dict) else None
    return str(value)[:64] if isinstance(value, str) else ""


def _state(view: dict[str, Any], block: str) -> dict[str, Any]:
    values = ((view.get("state") or {}).get("values") or {}).get(block) or {}
    entry = values.get(PICK) or values.get(TEXT) or {}
    return entry if isinstance(entry, dict) else {}


def _picked(view: dict[str, Any], field: Field) -> list[str]:
    options = _state(view, field.value).get("selected_options") or []
    return [str(o.get("value"))[:200] for o in options if isinstance(o, dict) and o.get("value")]


def read_form(view: dict[str, Any]) -> FormInput | dict[str, str]:
    """The submitted form, or Slack `errors` (block id -> message) to show next to the inputs."""
    chosen = (_state(view, Field.REASON.value).get("selected_option") or {}).get("value")
    if chosen not in {r.value for r in LostReason}:
        return {Field.REASON.value: "Tell me what happened."}
    reason = LostReason(str(chosen))
    picked = list(dict.fromkeys(_picked(view, Field.KEYS) + _picked(view, Field.OTHERS)))[:MAX_PICKED]
    if reason.removes and not picked:
        present = {blk.get("block_id") for blk in view.get("blocks") or []}
        where = Field.KEYS.value if Field.KEYS.value in present else Field.OTHERS.value
        return {where: "Tick what I should switch off."}
    note = clean(_state(view, Field.NOTE.value).get("value"), NOTE_MAX)
    return FormInput(report_id_of(view), reason, tuple(picked), note)


# --- simple modals -----------------------------------------------------------------------------------
def message_modal(text: str, *, title: str = TITLE) -> dict[str, Any]:
    return b.modal(title, [b.section(text)], close="Close")


def working_modal(text: str) -> dict[str, Any]:
    return message_modal(f":hourglass_flowing_sand: {text}")


def nothing_registered_modal(reader: Reader, support: str) -> dict[str, Any]:
    text = (
        f"Microsoft Entra lists no security key or other sign-in method for {reader.you} besides "
        f"{reader.your} password, so there's nothing for me to switch off.\n\nIf a laptop or phone with "
        f"{reader.your} work sign-ins was lost or stolen, contact {safe(support, 200)} now."
    )
    if reader.is_target:
        text += "\n\nWhen you're ready for a security key, message me _set up my key_."
    return message_modal(text)


# --- what will happen, and what did --------------------------------------------------------------
def _entry_line(entry: MethodEntry) -> str:
    title = safe(method_title(entry.kind, entry.name, entry.detail), 120)
    facts = []
    if entry.model and entry.model != entry.name:
        facts.append(safe(entry.model, 60))
    if entry.aaguid:
        facts.append(f"AAGUID `{safe(entry.aaguid, 40)}`")
    if entry.created:
        facts.append(f"added {ts(entry.created, '{date_short_pretty}')}")
    return f"*{title}*" + (f" · {' · '.join(facts)}" if facts else "")


def confirm_modal(report: LostReport, reader: Reader, *, last_strong: bool) -> dict[str, Any]:
    reason = LostReason(report.reason or LostReason.LOST)
    items = "\n".join(f"• {_entry_line(e)}" for e in entries(report))
    who = "you, your manager" if reader.is_target else f"{reader.name}, their manager"
    alert = " (as a security alert, because it was stolen)" if reason is LostReason.STOLEN else ""
    steps = [
        f"*1. Remove from {reader.your} account:*\n{items}",
        f"*2. Sign {reader.you} out everywhere.* Sessions end within a few minutes, not instantly, and apps "
        f"may ask {reader.you} to sign in again.",
        f"*3. Tell {who} and the helpdesk*{alert}.",
    ]
    if last_strong:
        steps.append(
            f"*4.* {reader.subject} will have no security key left: I'll offer a new key or a pickup at the desk."
        )
    body = [
        b.section(
            f"You said {reader.your} key is *{REASON_WORD[reason]}*. When you press *Remove now*, I will:"
        ),
        *[b.section(step) for step in steps],
        b.context("This can't be undone: a key that turns up again has to be registered again."),
    ]
    return b.modal(
        "Please confirm",
        body,
        callback_id=ViewId.LOST_KEY_CONFIRM,
        submit="Remove now",
        close="Cancel",
        private_metadata=metadata(report.id),
    )


def _outcome_line(entry: MethodEntry) -> str:
    title = f"*{safe(method_title(entry.kind, entry.name, entry.detail), 120)}*"
    outcome = entry.outcome
    if outcome is StepOutcome.REMOVED:
        return f":white_check_mark: {title}: removed"
    if outcome is StepOutcome.ALREADY_GONE:
        return f":white_check_mark: {title}: was already gone"
    if outcome is StepOutcome.REFUSED:
        return (
            f":no_entry: {title}: Microsoft Entra refused to remove it ({safe(entry.error or 'refused', 120)}). "
            "The helpdesk will remove it by hand."
        )
    if outcome is StepOutcome.STILL_LISTED:
        return f":hourglass_flowing_sand: {title}: removed, but Entra still lists it; I'm checking again"
    return f":hourglass_flowing_sand: {title}: *not removed yet*: {_why(entry.error)}. I'll keep trying by myself"


def _why(error: str | None) -> str:
    if error == "throttled":
        return "Microsoft Entra asked me to wait"
    return "Microsoft Entra didn't answer"


def _sessions_line(report: LostReport, reader: Reader) -> str:
    outcome = StepOutcome(report.revoke_outcome)
    if outcome is StepOutcome.DONE:
        return (
            f":white_check_mark: Signed {reader.you} out everywhere. Sessions end within a few minutes (not "
            f"instantly), and apps may ask {reader.you} to sign in again."
        )
    if outcome is StepOutcome.REFUSED:
        return (
            f":no_entry: Microsoft Entra refused to end {reader.your} sessions "
            f"({safe(report.revoke_error or 'refused', 120)}). The helpdesk will do it by hand."
        )
    return (
        f":hourglass_flowing_sand: *Not signed out yet*: {_why(report.revoke_error)}. I'll keep trying by "
        "myself"
    )


def outcome_lines(report: LostReport, reader: Reader) -> list[str]:
    return [_outcome_line(e) for e in entries(report)] + [_sessions_line(report, reader)]


def headline(report: LostReport, reader: Reader) -> str:
    state = ReportState(report.state)
    if state is ReportState.DONE:
        return f"Done. Here's what I did about {reader.your} {REASON_WORD[_reason(report)]} key:"
    if state is ReportState.GAVE_UP:
        return "I couldn't finish everything in time, so the helpdesk is finishing by hand. Where it stands:"
    if state in (ReportState.PARTIAL, ReportState.RUNNING):
        return f"I've started. Some steps aren't finished yet; I'll tell {reader.you} when they are:"
    return "Here's where it stands:"


def _reason(report: LostReport) -> LostReason:
    return LostReason(report.reason or LostReason.LOST)


def next_steps(report: LostReport, reader: Reader, support: str) -> list[str]:
    reason = _reason(report)
    steps = []
    if report.strong_left is True:
        steps.append(f"{reader.subject} can still sign in with {reader.your} other security key or passkey.")
    elif _removed_strong(report):
        steps.append(f"{reader.subject} {reader.has} no security key left.")
    if reason is LostReason.STOLEN:
        steps.append(
            f"If a laptop or phone was taken too, tell {safe(support, 200)} right away so they can lock it."
        )
    elif reason is LostReason.BROKEN:
        steps.append(
            "The broken key no longer works for this account: hand it in at the desk or throw it away."
        )
    else:
        steps.append("If the key turns up, don't use it: it no longer works. Bring it to the desk.")
    return steps


def _removed_strong(report: LostReport) -> bool:
    return any(e.strong and e.outcome.succeeded for e in entries(report))


def needs_replacement(report: LostReport) -> bool:
    return report.strong_left is False and _removed_strong(report)


def result_modal(report: LostReport, reader: Reader, support: str) -> dict[str, Any]:
    body = [b.section(headline(report, reader)), b.section("\n".join(outcome_lines(report, reader)))]
    body += [b.section(step) for step in next_steps(report, reader, support)]
    if needs_replacement(report):
        body.append(b.context(f"I've sent {reader.you} a message with the ways to get a new key."))
    return b.modal(TITLE, body, close="Close")


def at_home_result_modal(reader: Reader) -> dict[str, Any]:
    return message_modal(
        f"Nothing was removed: {reader.your} key stays registered. I've sent {reader.you} a message with a "
        "button to ask for a pass for today."
    )


# --- the target's DM ----------------------------------------------------------------------------------
def _on_behalf(report: LostReport) -> list[b.Block]:
    if not report.for_someone_else:
        return []
    return [
        b.section(
            f":information_source: <@{report.reporter_slack_id}> from the helpdesk reported your key "
            f"*{REASON_WORD[_reason(report)]}* for you."
        )
    ]


def _not_me_button(report: LostReport, text: str) -> dict[str, Any]:
    return b.button(
        text,
        Action.LOST_NOT_ME,
        value=report.id,
        style="danger",
        confirm=b.confirm_dialog(
            "Report this as wrong?",
            "The helpdesk gets a security alert and will contact you.",
            "Yes, alert them",
        ),
    )


def status_dm(report: LostReport, support: str) -> tuple[str, list[b.Block]]:
    """The target's message about a removal, updated in place as steps finish and choices are made."""
    reader = Reader("you", True)
    text = f"Your lost-key report: {headline(report, reader)}"
    body = [
        *_on_behalf(report),
        b.section(f"*{headline(report, reader)}*\n" + "\n".join(outcome_lines(report, reader))),
        b.section("\n".join(next_steps(report, reader, support))),
    ]
    body += _replacement_blocks(report)
    if report.for_someone_else:
        body.append(b.actions(_not_me_button(report, "I didn't ask for this")))
    body.append(b.context(f"Report {report.id[:8]} · questions? {safe(support, 200)}"))
    return text, body


def _replacement_blocks(report: LostReport) -> list[b.Block]:
    if report.replacement_request_id:
        return [b.context(":white_check_mark: You asked for a new key; the request is below in this chat.")]
    if report.desk_pickup_at:
        return [
            b.context(
                f":white_check_mark: You chose to pick up a new key at the desk ({ts(report.desk_pickup_at)}). "
                "Bring photo ID: they'll check it's you."
            )
        ]
    if not needs_replacement(report):
        return []
    return [
        b.section("*Get a new key.* Which suits you?"),
        b.actions(
            b.button("Get a new key", Action.LOST_NEW_KEY, value=report.id, style="primary"),
            b.button("Pick one up at the desk", Action.LOST_DESK_PICKUP, value=report.id),
            block_id="lost_replacement",
        ),
        b.context(
            "A new key starts with a one-time pass that the helpdesk approves after checking it's you. "
            "At the desk, they check your ID and hand you a key that's ready to use."
        ),
    ]


def at_home_dm(report: LostReport) -> tuple[str, list[b.Block]]:
    text = "Key left at home: nothing was removed. Need a pass for today?"
    body = [
        *_on_behalf(report),
        b.section(
            ":house: *Key left at home: nothing was removed*, your key stays registered.\n"
            "If you need to sign in today without it, ask for a *pass for today*: a Temporary Access Pass "
            "to sign in with for today only, which then stops working by itself. The "
            "helpdesk checks it's really you and approves it; the request is marked _Key left at home: a "
            "pass for today_. There's nothing to set up, and your key works again as soon as you have it."
        ),
    ]
    if report.replacement_request_id:
        body.append(b.context(":white_check_mark: You asked for a pass for today; the request is below."))
    else:
        body.append(
            b.actions(
                b.button(
                    "Ask for a pass for today", Action.LOST_PASS_TODAY, value=report.id, style="primary"
                ),
                block_id="lost_pass_today",
            )
        )
    if report.for_someone_else:
        body.append(b.actions(_not_me_button(report, "I didn't ask for this")))
    return text, body


def completion_dm(report: LostReport) -> tuple[str, list[b.Block]]:
    reader = Reader("you", True)
    done = report.state == ReportState.DONE
    text = f"Your lost-key report is {'complete' if done else 'with the helpdesk'}."
    return text, [b.section(f"*{headline(report, reader)}*\n" + "\n".join(outcome_lines(report, reader)))]


# --- the manager and the helpdesk ---------------------------------------------------------------------
def _removed_list(report: LostReport) -> str:
    return ", ".join(safe(method_title(e.kind, e.name, e.detail), 80) for e in entries(report)) or "nothing"


def manager_notice(report: LostReport) -> tuple[str, list[b.Block]]:
    name = safe(report.target_name, 100)
    word = REASON_WORD[_reason(report)]
    via = f" through <@{report.reporter_slack_id}> at the helpdesk" if report.for_someone_else else ""
    text = f"{name} reported their security key {word}."
    return text, [
        b.section(
            f"For your information: *{name}* reported their security key *{word}*{via}. keydesk is removing "
            f"{_removed_list(report)} from their account and signing them out everywhere. You're told because "
            "you're their manager."
        ),
        b.section("If this doesn't look right (they didn't lose anything), press the button."),
        b.actions(_not_me_button(report, "This looks wrong")),
    ]


def helpdesk_alert(report: LostReport) -> str:
    word = REASON_WORD[_reason(report)]
    who = f"<@{report.target_slack_id}> ({safe(report.target_upn, 120)})"
    via = f", reported by <@{report.reporter_slack_id}> on their behalf" if report.for_someone_else else ""
    reader = Reader(safe(report.target_name, 100), False)
    lines = [f"{who} reported their key *{word}*{via}.", *outcome_lines(report, reader)]
    if report.note:
        lines.append(f"Note: _{safe(report.note, NOTE_MAX)}_")
    if needs_replacement(report):
        lines.append("They have no phishing-resistant method left and were offered a replacement.")
    return "\n".join(lines)


def helpdesk_completion(report: LostReport) -> str:
    reader = Reader(safe(report.target_name, 100), False)
    if report.state == ReportState.DONE:
        head = f"The lost-key report for <@{report.target_slack_id}> is now complete:"
    else:
        head = (
            f"*Please finish by hand:* keydesk ran out of time on the lost-key report for "
            f"<@{report.target_slack_id}> ({safe(report.target_upn, 120)}):"
        )
    return "\n".join([head, *outcome_lines(report, reader)])


def mail_text(report: LostReport, support: str) -> tuple[str, str]:
    word = REASON_WORD[_reason(report)]
    removed = "\n".join(f"- {method_title(e.kind, e.name, e.detail)}" for e in entries(report))
    via = " by the helpdesk on your behalf" if report.for_someone_else else " from your Slack account"
    body = (
        f"A security key was reported {word}{via} through keydesk. These sign-in methods are being removed "
        f"from your work account:\n{removed}\n\nYour sign-in sessions are being ended: within a few minutes, "
        "apps and websites may ask you to sign in again.\n\n"
        f"If this wasn't you, contact {support} immediately."
    )
    return "A sign-in method was removed from your work account", body
