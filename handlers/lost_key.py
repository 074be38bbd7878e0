"""`/lostkey`, its two modals and the buttons that follow: ack at once, then hand over to the service."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.services import lost_key
from bot.services.runtime import Runtime
from bot.slack import lost_views
from bot.slack.ids import Action, Command, ViewId

_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>")


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")[:64]


def _user(body: dict[str, Any]) -> str:
    return str(body["user"]["id"])


def _root(view: dict[str, Any]) -> str:
    """The modal's root view id: the key its report was filed under (the same across updates)."""
    return str(view.get("root_view_id") or view["id"])[:64]


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.command(Command.LOSTKEY.value)
    async def lostkey_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        user, trigger = str(command["user_id"]), str(command["trigger_id"])
        mention = _MENTION.search(command.get("text") or "")
        if mention and mention.group(1) != user:  # `/lostkey @person`: the helpdesk variant
            await lost_key.helpdesk_lost(rt, user, mention.group(1), trigger)
        else:
            await lost_key.open_lost_key_modal(rt, user, trigger)

    @app.view(ViewId.LOST_KEY_FORM.value)
    async def form_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = lost_views.read_form(view)
        if not isinstance(form, lost_views.FormInput):
            await ack(response_action="errors", errors=form)
            return
        await ack(response_action="update", view=lost_views.working_modal("Checking with Microsoft Entra…"))
        await lost_key.submit_form(rt, _user(body), str(view["id"]), _root(view), form)

    @app.view(ViewId.LOST_KEY_CONFIRM.value)
    async def confirm_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack(response_action="update", view=lost_views.working_modal("Removing and signing out…"))
        report_id = lost_views.report_id_of(view)
        await lost_key.confirm(rt, _user(body), str(view["id"]), _root(view), report_id)

    @app.action(Action.LOST_NEW_KEY.value)
    async def new_key(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await lost_key.choose_new_key(rt, _user(body), _value(body))

    @app.action(Action.LOST_DESK_PICKUP.value)
    async def desk_pickup(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await lost_key.choose_desk_pickup(rt, _user(body), _value(body))

    @app.action(Action.LOST_PASS_TODAY.value)
    async def pass_today(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await lost_key.ask_pass_today(rt, _user(body), _value(body))

    @app.action(Action.LOST_NOT_ME.value)
    async def not_me(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await lost_key.not_me(rt, _user(body), _value(body))
