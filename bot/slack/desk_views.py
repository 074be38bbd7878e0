"""Block Kit for desk agents and the key inventory: the pairing card, lists, key histories (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.text import safe
from bot.slack import blocks as b
from bot.slack.ids import Action
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
            f"last seen {_when(agent.last_seen_at)}"
        )
    return "\n".join(lines)


def key_history(
    records: Sequence[KeyRecord], events: dict[str, Sequence[KeyEvent]], desks: dict[str, str]
) -> str:
    parts: list[str] = []
    for record in records:
        desk = desks.get(record.desk_agent_id or "", "unknown desk")
        user = f"<{record.user_entra_id}>" if record.user_entra_id else "nobody"
        lines = [
            f"*Key `{safe(record.serial or 'no serial', 128)}`* · {safe(record.model or 'unknown model', 200)}",
            f"AAGUID `{record.aaguid}` · firmware {safe(record.firmware or 'not reported', 64)} · "
            f"state *{record.state}* · user {user} · last desk `{safe(desk, 64)}`",
            f"First seen {_when(record.first_seen_at)} · last seen {_when(record.last_seen_at)}",
            "*History*",
        ]
        for event in events.get(record.id, ()):
            where = (
                f" at `{safe(desks.get(event.desk_agent_id or '', '?'), 64)}`" if event.desk_agent_id else ""
            )
            actor = (
                f"<@{event.actor.removeprefix('slack:')}>"
                if event.actor.startswith("slack:")
                else event.actor
            )
            lines.append(f"• {_when(event.at)}: {event.kind.replace('_', ' ')}{where} by {actor}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
