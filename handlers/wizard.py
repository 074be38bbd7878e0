"""The setup wizard's buttons, the token modal, and replies in the helpdesk card threads.

Register this module before `handlers.messages`: Bolt runs the first listener that matches, and
`messages` ends with a catch-all for every other message event.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.domain.wizard import WizardAction
from bot.services import oath, registration, stuck
from bot.services.runtime import Runtime
from bot.slack import wizard_views
from bot.slack.ids import Action, ViewId


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")[:200]


def _user(body: dict[str, Any]) -> str:
    return str(body["user"]["id"])


def _where(body: dict[str, Any]) -> tuple[str, str]:
    """The channel and message a button in a channel was on."""
    channel = str(
        (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
    )
    ts = str((body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts") or "")
    return channel, ts


async def is_thread_reply(event: dict[str, Any]) -> bool:
    """A person's reply in a channel thread (not the DM, not an edit, not a bot)."""
    thread = event.get("thread_ts")
    return (
        event.get("channel_type") in ("group", "channel")
        and bool(thread)
        and thread != event.get("ts")
        and not event.get("subtype")
        and not event.get("bot_id")
    )


def register(app: AsyncApp, rt: Runtime) -> None:
    def step_button(action: Action, move: WizardAction) -> None:
        @app.action(action.value)
        async def pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            await registration.press(rt, _user(body), move, _value(body))

    step_button(Action.WIZARD_DONE, WizardAction.DONE)
    step_button(Action.WIZARD_BACK, WizardAction.BACK)
    step_button(Action.WIZARD_CHOOSE, WizardAction.CHOOSE)

    @app.action(Action.WIZARD_STUCK.value)
    async def stuck_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await stuck.ask_for_help(rt, _user(body), _value(body))

    @app.action(Action.WIZARD_RESUME.value)
    async def resume_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await registration.resume(rt, _user(body))

    @app.action(Action.WIZARD_OATH.value)
    async def token_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await oath.open_form(rt, _user(body), _value(body), str(body["trigger_id"]))

    @app.view(ViewId.WIZARD_OATH.value)
    async def token_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = wizard_views.read_oath_form(view)
        if not isinstance(form, wizard_views.OathForm):
            await ack(response_action="errors", errors=form)
            return
        await ack(response_action="update", view=wizard_views.oath_working())
        wizard_id, attempt = wizard_views.oath_metadata(view)
        await oath.submit(rt, _user(body), str(view["id"]), wizard_id, attempt, form)

    @app.action(Action.STUCK_TAKE.value)
    async def take_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await stuck.take(rt, _user(body), _value(body)[:64], *_where(body))

    @app.action(Action.STUCK_RELEASE.value)
    async def release_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await stuck.release(rt, _user(body), _value(body)[:64], *_where(body))

    @app.event("message", matchers=[is_thread_reply])
    async def thread_reply(event: dict[str, Any]) -> None:
        await stuck.relay_from_thread(rt, event)
