"""Block Kit for desk agents and the key inventory: the pairing card, lists, key histories (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.text import safe
from bot.slack import blocks as b
from bot.slack.ids import Action, ViewId
from bot.store.models.desk import AgentState, DeskAgent
from bot.store.models.key_inventory import KeyEvent, KeyRecord

Blocks = list[dict[str, Any]]


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def pairing_card(agent: DeskAgent, fingerprint: str, needs_confirmation: bool) -> tuple[str, Blocks]:
    name = safe(agent.name, 64)
    head = f"*Desk agent `{name}` paired* with a code issued by <@{agent.code_issued_by_slack_id}>."
    facts = f"Key fingerprint `{fingerprint}` (the agent prints the same one)."
    state = AgentState(agent.state)
    if state is AgentState.AWAITING_CONFIRMATION:
        text = f"{head} Another approver must confirm it before it gets any job."
        return text, [
            b.section(f":desktop_computer: {head}\n{facts}"),
            b.section(
                "A *second approver* (not the one who issued the code) must confirm it before it gets any job."
            ),
            b.actions(
                b.button("Confirm agent", Action.DESK_AGENT_CONFIRM, value=agent.id, style="primary"),
                b.button("Reject", Action.DESK_AGENT_REJECT, value=agent.id, style="danger"),
                block_id="desk_agent_decision",
            ),
        ]
    if state is AgentState.ACTIVE:
        who = f" by <@{agent.confirmed_by_slack_id}>" if agent.confirmed_by_slack_id else ""
        how = (
            f"Confirmed{who}"
            if needs_confirmation or agent.confirmed_by_slack_id
            else "Active (no second approval required)"
        )
        text = f"{head} {how}."
        return text, [
            b.section(f":white_check_mark: {head}\n{facts}"),
            b.context(f"{how} · {_when(agent.confirmed_at)}"),
        ]
    who = f" by <@{agent.revoked_by_slack_id}>" if agent.revoked_by_slack_id else ""
    text = f"{head} Revoked{who}."
    return text, [
        b.section(f":no_entry: {head}\n{facts}"),
        b.context(f"Revoked{who} · {_when(agent.revoked_at)}"),
    ]


def agent_list(agents: Sequence[DeskAgent]) -> str:
    if not agents:
        return "No desk agents are paired yet. Pair one with `/keydesk desk pair`."
    lines = ["*Desk agents*"]
    for agent in agents:
        lines.append(
            f"• `{safe(agent.name, 64)}`: {AgentState(agent.state).value.replace('_', ' ')} · "
            f"paired {_when(agent.paired_at)} · last seen {_when(agent.last_seen_at)}"
        )
    return "\n".join(lines)


HANDOVER_CHECKS = {
    "photo_id": "Government photo ID, compared with the person in front of me",
    "badge_photo": "Company badge, compared with the directory photo",
    "verified_id": "Verified ID / Face Check shown on their phone",
}
STATE_TEXT = {
    "stock": "in stock",
    "provisioned": "provisioned, waiting for hand-over",
    "handed_over": "handed over, receipt not yet confirmed",
    "active": "in use (receipt confirmed)",
    "lost": "lost or stolen",
    "retired": "retired",
}


def _person(slack_id: str | None, entra_id: str | None) -> str:
    if slack_id:
        return f"<@{slack_id}>"
    if entra_id:
        return f"Entra user `{safe(entra_id, 64)}`"
    return "nobody"


def _actor(actor: str) -> str:
    if actor.startswith("slack:"):
        return f"<@{actor.removeprefix('slack:')}>"
    return f"`{safe(actor, 128)}`"


def _event_line(event: KeyEvent, desks: dict[str, str], users: dict[str, str]) -> str:
    d = event.details or {}
    where = f" at `{safe(desks.get(event.desk_agent_id or '', '?'), 64)}`" if event.desk_agent_id else ""
    what = event.kind.replace("_", " ")
    extra = ""
    if event.kind == "provisioned":
        user = str(d.get("user") or "")
        what = f"provisioned for {_person(users.get(user), user)}"
        if d.get("method_id"):
            extra = f" (Entra method `{safe(str(d['method_id']), 80)}`)"
    elif event.kind == "handed_over":
        check = HANDOVER_CHECKS.get(str(d.get("verified_by")), str(d.get("verified_by") or "?"))
        extra = f" · identity checked: {safe(check, 120)}"
        if d.get("note"):
            extra += f" · note: {safe(str(d['note']), 200)}"
    elif event.kind == "received":
        what = "receipt confirmed"
    elif event.kind == "disputed":
        what = "*the user said they did not receive it*"
    elif event.kind in ("lost", "retired") and d.get("reason"):
        extra = f" (reason: {safe(str(d['reason']), 200)})"
    return f"• {_when(event.at)}: {what}{where} by {_actor(event.actor)}{extra}"


def _record_text(record: KeyRecord, events: Sequence[KeyEvent], desks: dict[str, str]) -> str:
    desk = desks.get(record.desk_agent_id or "", "unknown desk")
    users = (
        {record.user_entra_id: record.user_slack_id} if record.user_entra_id and record.user_slack_id else {}
    )
    lines = [
        f"*Key `{safe(record.serial or 'no serial', 128)}`* · {safe(record.model or 'unknown model', 200)}",
        f"AAGUID `{record.aaguid}` · firmware {safe(record.firmware or 'not reported', 64)} · "
        f"state *{STATE_TEXT.get(record.state, record.state)}* · user "
        f"{_person(record.user_slack_id, record.user_entra_id)} · last desk `{safe(desk, 64)}`",
        f"First seen {_when(record.first_seen_at)} · last seen {_when(record.last_seen_at)}",
        "*History*",
    ]
    lines += [_event_line(event, desks, users) for event in events] or ["• nothing recorded yet"]
    return "\n".join(lines)


def key_history(
    records: Sequence[KeyRecord], events: dict[str, Sequence[KeyEvent]], desks: dict[str, str]
) -> str:
    return "\n\n".join(_record_text(r, events.get(r.id, ()), desks) for r in records)


def _chunks(text: str, size: int = 2900) -> list[str]:
    """Section-sized pieces, split at line ends."""
    out, current = [], ""
    for line in text.split("\n"):
        if current and len(current) + len(line) + 1 > size:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line[:size]
    return [*out, current] if current else out


def key_card(
    records: Sequence[KeyRecord], events: dict[str, Sequence[KeyEvent]], desks: dict[str, str]
) -> Blocks:
    """The key's record and history, with the custody actions its state allows."""
    blocks: Blocks = []
    for record in records[:10]:
        if blocks:
            blocks.append(b.divider())
        blocks += [
            b.section(part) for part in _chunks(_record_text(record, events.get(record.id, ()), desks))
        ]
        buttons = []
        if record.state == "provisioned":
            buttons.append(b.button("Hand over…", Action.KEY_HANDOVER, value=record.id, style="primary"))
        if record.state != "retired":
            buttons.append(
                b.button(
                    "Retire",
                    Action.KEY_RETIRE,
                    value=record.id,
                    style="danger",
                    confirm=b.confirm_dialog(
                        "Retire this key?",
                        "It leaves service for good: the inventory will show it as retired.",
                        "Retire",
                    ),
                )
            )
        if buttons:
            blocks.append(b.actions(*buttons, block_id=f"key_{record.id[:12]}"))
    return blocks


def handover_modal(record: KeyRecord, desk: str) -> dict[str, Any]:
    options = [{"text": b.plain(label), "value": key} for key, label in HANDOVER_CHECKS.items()]
    return b.modal(
        "Hand over key",
        [
            b.section(
                f"Hand key `{safe(record.serial or 'no serial', 128)}` "
                f"({safe(record.model or 'unknown model', 200)}) to "
                f"{_person(record.user_slack_id, record.user_entra_id)}.\n"
                "Only hand it over after you checked, in person, that this is them. "
                "Knowledge questions (birthday, employee id) don't count."
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
                "element": {"type": "plain_text_input", "action_id": "text", "max_length": 300},
            },
            b.context(f"Prepared at desk `{safe(desk, 64)}`. The person is told in Slack right away."),
        ],
        callback_id=ViewId.KEY_HANDOVER,
        submit="Handed over",
        close="Cancel",
        private_metadata=json.dumps({"key_id": record.id}),
    )


def handover_dm(record: KeyRecord, technician: str, desk: str, support: str) -> tuple[str, Blocks]:
    key = (
        f"{safe(record.model or 'security key', 200)} (serial `{safe(record.serial or 'not exposed', 128)}`)"
    )
    text = (
        f"<@{technician}> handed you a security key at desk `{safe(desk, 64)}`: {key}. "
        "Tell us you have it, or tell us if you don't."
    )
    return text, [
        b.section(
            f":key: <@{technician}> just handed you a security key at desk `{safe(desk, 64)}`:\n{key}\n"
            "Please confirm you have it. If you didn't get a key, say so at once: someone else may "
            f"hold a key that signs in as you. You can also reach {safe(support, 200)}."
        ),
        b.actions(
            b.button("I have my key", Action.KEY_RECEIVED, value=record.id, style="primary"),
            b.button("I didn't get this key", Action.KEY_NOT_RECEIVED, value=record.id, style="danger"),
            block_id="key_receipt",
        ),
    ]


def receipt_answered(text: str) -> tuple[str, Blocks]:
    return text, [b.section(text)]
