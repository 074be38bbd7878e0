"""Slash commands and global shortcuts."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.services import lost_key, onboarding
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack.ids import Callback, Command, ViewId
from handlers import desk, provision

_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>")

KEYDESK_HELP = (
    "*keydesk for the helpdesk*\n"
    "• `/keydesk tap @person`: open a Temporary Access Pass request for someone (they confirm in their DM)\n"
    "• `/keydesk lost @person`: cut off a lost or stolen key for someone who called in (after you verified them)\n"
    "• `/keydesk desk pair|list|revoke NAME|inspect NAME|reset NAME`: desk agents that program keys\n"
    "• `/keydesk desk provision DESK @person at-desk|pickup`: prepare a security key for someone at a desk\n"
    "• `/keydesk key SERIAL [handover|retire]`: a key's inventory record and history; hand it over or retire it\n"
    "• `/keydesk help`: this message\n"
    "People set up their own key by messaging me; they report a lost key with `/lostkey`."
)


def tap_for_user_modal() -> dict[str, Any]:
    return b.modal(
        "Pass for someone",
        [
            b.section(
                "Open a Temporary Access Pass request for a person. They must confirm it in their own DM, "
                "and another approver must approve it."
            ),
            {
                "type": "input",
                "block_id": "target",
                "label": b.plain("Who is it for?"),
                "element": {"type": "users_select", "action_id": "user"},
            },
        ],
        callback_id=ViewId.HELPDESK_TAP_FOR_USER,
        submit="Open request",
        close="Cancel",
    )


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.command(Command.KEYDESK.value)
    async def keydesk_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        words = (command.get("text") or "").strip().split()
        sub = words[0].lower() if words else "help"
        if sub == "tap":
            match = _MENTION.search(command.get("text") or "")
            if not match:
                await ack(text="Mention the person: `/keydesk tap @person`.")
                return
            await ack(text="Checking…")
            message = await onboarding.open_for_user(rt, command["user_id"], match.group(1))
            await rt.slack.ephemeral(command["channel_id"], command["user_id"], message)
            return
        if sub == "lost":
            match = _MENTION.search(command.get("text") or "")
            if not match:
                await ack(text="Mention the person: `/keydesk lost @person`.")
                return
            await ack()
            await lost_key.helpdesk_lost(rt, command["user_id"], match.group(1), command["trigger_id"])
            return
        if sub == "desk" and len(words) > 1 and words[1].lower() == "provision":
            await provision.provision_command(rt, ack, command, words[2:])
            return
        if sub == "desk":
            await desk.desk_command(rt, ack, command, words[1:])
            return
        if sub == "key":
            await desk.key_command(rt, ack, command, words[1:])
            return
        await ack(text=KEYDESK_HELP)

    @app.shortcut(Callback.HELPDESK_TAP_SHORTCUT.value)
    async def tap_for_user_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await rt.slack.open_view(body["trigger_id"], tap_for_user_modal())

    @app.shortcut(Callback.START_ONBOARDING_SHORTCUT.value)
    async def start_onboarding_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await onboarding.request_pass(rt, body["user"]["id"])
