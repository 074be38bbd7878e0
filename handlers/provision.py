"""`/keydesk desk provision DESK @person at-desk|pickup`, its form, the person's Reveal PIN button, and
the manager's "This looks wrong" on the notice of a key prepared for their report."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.services import desk_notices, desk_provisioning, tap_common
from bot.services.runtime import Runtime
from bot.slack import provision_views
from bot.slack.ids import Action, ViewId
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import desk_repo
from bot.store.models.desk import AgentState
from bot.store.models.desk_provisioning import PinMode

_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>")
MODE_WORDS = {
    "at-desk": PinMode.AT_DESK,
    "at_desk": PinMode.AT_DESK,
    "atdesk": PinMode.AT_DESK,
    "desk": PinMode.AT_DESK,
    "pickup": PinMode.PICKUP,
    "pick-up": PinMode.PICKUP,
    "random": PinMode.PICKUP,
}
USAGE = (
    "`/keydesk desk provision DESK @person at-desk|pickup`: prepare a security key for someone at a desk "
    "agent. *at-desk*: they are there and type their own PIN on the desk's screen; *pickup*: a random PIN "
    "nobody at the desk sees, revealed to them in Slack. Leave out anything and I'll open a form."
)


def parse(words: list[str], text: str) -> tuple[str | None, str | None, PinMode | None]:
    """The desk name, the person's Slack id and the PIN mode, each None when not given."""
    mention = _MENTION.search(text)
    mode = next((MODE_WORDS[w.lower()] for w in words if w.lower() in MODE_WORDS), None)
    desk = next((w for w in words if not w.startswith("<") and w.lower() not in MODE_WORDS), None)
    return desk, mention.group(1) if mention else None, mode


async def provision_command(rt: Runtime, ack: AsyncAck, command: dict[str, Any], words: list[str]) -> None:
    """`words` are the command's words after `desk provision`."""
    user, channel = str(command["user_id"]), str(command["channel_id"])
    if words and words[0].lower() == "help":
        await ack(text=USAGE)
        return
    desk, target, mode = parse(words, command.get("text") or "")
    if desk and target and mode:
        await ack(text="Checking the person and the desk…")
        async with rt.after_ack():
            message = await desk_provisioning.ask(rt, user, desk[:64], target, mode.value, channel)
            await rt.slack.ephemeral(channel, user, message)
        return
    await ack()
    async with rt.db.read() as session:
        desks = [a.name for a in await desk_repo.agents(session) if a.state == AgentState.ACTIVE]
    if not desks:
        await rt.slack.ephemeral(
            channel, user, "No desk agent is active. Pair one with `/keydesk desk pair`."
        )
        return
    view = provision_views.provision_modal(desks, desk=desk, user=target, channel=channel)
    try:
        await rt.slack.open_view(str(command["trigger_id"]), view)
    except SlackError:
        await rt.slack.ephemeral(channel, user, USAGE)


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.view(ViewId.DESK_PROVISION.value)
    async def form_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = provision_views.read_form(view)
        if isinstance(form, dict):
            await ack(response_action="errors", errors=form)
            return
        await ack(response_action="update", view=provision_views.result_modal(":hourglass: Checking…"))
        desk, target, mode = form
        async with rt.after_ack():
            message = await desk_provisioning.ask(
                rt, str(body["user"]["id"]), desk, target, mode, provision_views.form_channel(view)
            )
            try:
                await rt.slack.update_view(str(view["id"]), provision_views.result_modal(message))
            except SlackError:
                await tap_common.tell(rt, str(body["user"]["id"]), message)

    @app.action(Action.DESK_PIN_REVEAL.value)
    async def reveal_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        clicker = str(body["user"]["id"])
        request_id = str(body["actions"][0].get("value") or "")[:64]
        # trigger_id lives about 3 s: open the modal before any other I/O, fill it in afterwards.
        try:
            view_id = await rt.slack.open_view(str(body["trigger_id"]), provision_views.working_modal())
        except SlackError:
            await tap_common.tell(
                rt, clicker, "Slack didn't let me open the window; press *Reveal PIN* again."
            )
            return
        await desk_provisioning.reveal_pin(rt, request_id, clicker, view_id)

    @app.action(Action.DESK_LOOKS_WRONG.value)
    async def looks_wrong_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        clicker = str(body["user"]["id"])
        request_id = str(body["actions"][0].get("value") or "")[:64]
        async with rt.after_ack():
            reply = await desk_notices.looks_wrong(rt, request_id, clicker, _message_of(body))
            await tap_common.tell(rt, clicker, reply)


def _message_of(body: dict[str, Any]) -> PostedMessage | None:
    """The message the button was on (the manager's notice), to replace its button with the outcome."""
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
    ts = (body.get("message") or {}).get("ts")
    return PostedMessage(str(channel), str(ts)) if channel and ts else None
