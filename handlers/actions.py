"""Buttons: ack at once, then hand the click to the service that owns it."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.services import conversation, delivery, lost_key, manager, onboarding, tap_common
from bot.services.runtime import Runtime
from bot.slack import tap_views
from bot.slack.ids import Action
from bot.slack.messenger import SlackError


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")[:64]


def _user(body: dict[str, Any]) -> str:
    return str(body["user"]["id"])


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.action(Action.OPEN_HOME.value)
    async def open_home(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            await conversation.refresh_home(rt, _user(body))

    @app.action(Action.START_SETUP.value)
    async def start_setup(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            await onboarding.request_pass(rt, _user(body))

    @app.action(Action.TAP_ASK_AGAIN.value)
    async def ask_again(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            await onboarding.request_pass(rt, _user(body))

    @app.action(Action.ASK_HELP.value)
    async def ask_help(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            await conversation.ask_for_help(rt, _user(body))

    @app.action(Action.REPORT_LOST.value)
    async def report_lost(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await lost_key.open_lost_key_modal(rt, _user(body), body["trigger_id"])

    @app.action(Action.TAP_APPROVE.value)
    async def approve_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        request = await tap_common.load(rt, _value(body))
        if request is None:
            return
        view = tap_views.approve_modal(request, rt.settings.verification_choices, rt.clock.now())
        try:
            await rt.slack.open_view(body["trigger_id"], view)
        except SlackError:
            await tap_common.tell(
                rt, _user(body), "Slack didn't let me open the approval window; click again."
            )

    @app.action(Action.TAP_DENY.value)
    async def deny_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        request = await tap_common.load(rt, _value(body))
        if request is None:
            return
        await rt.slack.open_view(body["trigger_id"], tap_views.deny_modal(request))

    # Reveals have their own bound (and put their follow-up work behind the passes), not
    # `rt.work_slots`: a crowd waiting out Entra's throttling must not hold up everyone else's
    # buttons, nor queue behind them.
    reveal_lanes = delivery.RevealLanes()

    @app.action(Action.TAP_REVEAL.value)
    async def reveal_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        # trigger_id lives about 3 s: open the modal before any other I/O and before queueing for a
        # reveal slot; fill it in afterwards.
        try:
            view_id = await rt.slack.open_view(body["trigger_id"], tap_views.working_modal())
        except SlackError:
            # No window to show a pass in, so none is created.
            await tap_common.tell(
                rt, _user(body), "Slack didn't let me open the window; press *Reveal pass* again."
            )
            return
        await delivery.reveal(rt, _value(body), _user(body), view_id, reveal_lanes)

    @app.action(Action.TAP_TARGET_CONFIRM.value)
    async def target_confirm(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            await onboarding.target_answers(rt, _value(body), _user(body), confirmed=True)

    @app.action(Action.TAP_TARGET_DECLINE.value)
    async def target_decline(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            await onboarding.target_answers(rt, _value(body), _user(body), confirmed=False)

    @app.action(Action.MANAGER_CONFIRM.value)
    async def manager_confirm(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            reply = await manager.answer(rt, _value(body), _user(body), expected=True)
            await tap_common.tell(rt, _user(body), reply)

    @app.action(Action.MANAGER_REJECT.value)
    async def manager_reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            reply = await manager.answer(rt, _value(body), _user(body), expected=False)
            await tap_common.tell(rt, _user(body), reply)

    @app.action(Action.MANAGER_LOOKS_WRONG.value)
    async def looks_wrong(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        async with rt.after_ack():
            reply = await manager.looks_wrong(rt, _value(body), _user(body))
            await tap_common.tell(rt, _user(body), reply)
