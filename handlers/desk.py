"""`/keydesk desk ...`, `/keydesk key SERIAL` and the desk agent pairing card's buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.services import desk_inventory, desk_pairing
from bot.services.runtime import Runtime
from bot.slack.ids import Action

DESK_HELP = (
    "*Desk agents*\n"
    "• `/keydesk desk pair`: get a one-time pairing code for a new desk agent (approvers)\n"
    "• `/keydesk desk list`: the paired desk agents\n"
    "• `/keydesk desk revoke NAME`: cut a desk agent off now\n"
    "• `/keydesk desk inspect NAME`: inspect the key plugged in at that desk\n"
    "• `/keydesk key SERIAL`: a key's inventory record and history"
)


async def desk_command(rt: Runtime, ack: AsyncAck, command: dict[str, Any], words: list[str]) -> None:
    """`words` are the command's words after `desk`."""
    sub = words[0].lower() if words else "help"
    user, channel = command["user_id"], command["channel_id"]
    if sub not in ("pair", "list") and not (sub in ("revoke", "inspect") and len(words) == 2):
        await ack(text=DESK_HELP)
        return
    await ack(text="Checking your approver rights…" if sub == "pair" else "")
    async with rt.after_ack():
        if sub == "pair":
            message = await desk_pairing.issue_code(rt, user)
        elif sub == "list":
            message = await desk_pairing.list_agents(rt, user)
        elif sub == "revoke":
            message = await desk_pairing.revoke_by_name(rt, words[1], user)
        else:
            message = await desk_inventory.inspect_at(rt, user, words[1])
        await rt.slack.ephemeral(channel, user, message)


async def key_command(rt: Runtime, ack: AsyncAck, command: dict[str, Any], words: list[str]) -> None:
    if len(words) != 1:
        await ack(text="Give the key's serial number: `/keydesk key SERIAL`.")
        return
    await ack()
    async with rt.after_ack():
        message = await desk_inventory.show_key(rt, command["user_id"], words[0])
        await rt.slack.ephemeral(command["channel_id"], command["user_id"], message)


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.action(Action.DESK_AGENT_CONFIRM.value)
    async def confirm(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            message = await desk_pairing.confirm(rt, str(action.get("value") or ""), body["user"]["id"])
            await _reply(rt, body, message)

    @app.action(Action.DESK_AGENT_REJECT.value)
    async def reject(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            message = await desk_pairing.reject(rt, str(action.get("value") or ""), body["user"]["id"])
            await _reply(rt, body, message)


async def _reply(rt: Runtime, body: dict[str, Any], message: str) -> None:
    channel = (body.get("channel") or {}).get("id")
    user = body["user"]["id"]
    if channel:
        await rt.slack.ephemeral(channel, user, message)
