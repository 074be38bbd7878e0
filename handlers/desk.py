"""`/keydesk desk ...`, `/keydesk key SERIAL` and the desk agent pairing card's buttons."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.domain.text import clean
from bot.services import desk_custody, desk_inventory, desk_pairing, tap_common
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack.ids import Action, ViewId
from bot.slack.messenger import PostedMessage, SlackError

DESK_HELP = (
    "*Desk agents*\n"
    "• `/keydesk desk pair`: get a one-time pairing code for a new desk agent (approvers)\n"
    "• `/keydesk desk list`: the paired desk agents\n"
    "• `/keydesk desk revoke NAME`: cut a desk agent off now\n"
    "• `/keydesk desk inspect NAME`: inspect the key plugged in at that desk\n"
    "• `/keydesk desk reset NAME`: factory-reset the key plugged in at that desk (guided on its screen)\n"
    "• `/keydesk key SERIAL`: a key's inventory record and history\n"
    "• `/keydesk key SERIAL handover`: record handing a prepared key to its user (after an ID check)\n"
    "• `/keydesk key SERIAL retire`: take a key out of service (approvers)"
)
KEY_USAGE = "Give the key's serial number: `/keydesk key SERIAL` (then `handover` or `retire` if you want)."


async def desk_command(rt: Runtime, ack: AsyncAck, command: dict[str, Any], words: list[str]) -> None:
    """`words` are the command's words after `desk`."""
    sub = words[0].lower() if words else "help"
    user, channel = command["user_id"], command["channel_id"]
    if sub not in ("pair", "list") and not (sub in ("revoke", "inspect", "reset") and len(words) == 2):
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
        elif sub == "reset":
            message = await desk_inventory.reset_at(rt, user, words[1])
        else:
            message = await desk_inventory.inspect_at(rt, user, words[1])
        await rt.slack.ephemeral(channel, user, message)


async def key_command(rt: Runtime, ack: AsyncAck, command: dict[str, Any], words: list[str]) -> None:
    verb = words[1].lower() if len(words) == 2 else ""
    if not (len(words) == 1 or verb in ("handover", "retire")):
        await ack(text=KEY_USAGE)
        return
    await ack()
    user, channel = command["user_id"], command["channel_id"]
    if verb == "handover":  # the modal first: the trigger id lives about 3 s
        record, problem = await desk_custody.find_by_serial(rt, words[0])
        if record is not None:
            problem = await desk_custody.open_handover(rt, user, record.id, command["trigger_id"])
        if problem:
            await rt.slack.ephemeral(channel, user, problem)
        return
    async with rt.after_ack():
        if verb == "retire":
            record, message = await desk_custody.find_by_serial(rt, words[0])
            if record is not None:
                message = await desk_custody.retire(rt, record.id, user)
            await rt.slack.ephemeral(channel, user, message or "")
            return
        text, blocks = await desk_inventory.key_card(rt, user, words[0])
        await rt.slack.ephemeral(channel, user, text[:3000], blocks)


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _message_of(body: dict[str, Any]) -> PostedMessage | None:
    channel = (body.get("channel") or body.get("container") or {}).get("id") or (
        body.get("container") or {}
    ).get("channel_id")
    ts = (body.get("message") or {}).get("ts")
    return PostedMessage(channel, ts) if channel and ts else None


def register(app: AsyncApp, rt: Runtime) -> None:
    register_custody(app, rt)

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


def register_custody(app: AsyncApp, rt: Runtime) -> None:
    """The key card's buttons, the hand-over modal and the user's answer in their DM."""

    @app.action(Action.KEY_HANDOVER.value)
    async def handover_clicked(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        problem = await desk_custody.open_handover(
            rt, user, str(action.get("value") or "")[:64], body["trigger_id"]
        )
        if problem:
            await _reply(rt, body, problem)

    @app.view(ViewId.KEY_HANDOVER.value)
    async def handover_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = (view.get("state") or {}).get("values") or {}
        method = ((values.get("verification") or {}).get("method") or {}).get("selected_option") or {}
        if not method.get("value"):
            await ack(
                response_action="errors", errors={"verification": "Choose how you verified the person."}
            )
            return
        working = b.modal("Hand over key", [b.section(":hourglass: Recording…")], close="Close")
        await ack(response_action="update", view=working)
        note = clean(((values.get("note") or {}).get("text") or {}).get("value"), 300)
        key_id = str(_metadata(view).get("key_id") or "")[:64]
        async with rt.after_ack():
            message = await desk_custody.hand_over(
                rt, key_id, body["user"]["id"], str(method["value"])[:32], note
            )
            with contextlib.suppress(SlackError):
                await rt.slack.update_view(
                    view["id"], b.modal("Hand over key", [b.section(message)], close="Close")
                )

    @app.action(Action.KEY_RETIRE.value)
    async def retire_clicked(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            message = await desk_custody.retire(rt, str(action.get("value") or "")[:64], body["user"]["id"])
            await _reply(rt, body, message)

    @app.action(Action.KEY_RECEIVED.value)
    async def received_clicked(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        async with rt.after_ack():
            problem = await desk_custody.received(
                rt, str(action.get("value") or "")[:64], user, _message_of(body)
            )
            if problem:
                await tap_common.tell(rt, user, problem)

    @app.action(Action.KEY_NOT_RECEIVED.value)
    async def not_received_clicked(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        async with rt.after_ack():
            problem = await desk_custody.not_received(
                rt, str(action.get("value") or "")[:64], user, _message_of(body)
            )
            if problem:
                await tap_common.tell(rt, user, problem)
