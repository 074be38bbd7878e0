"""Slack listeners, one module per surface; `register_listeners` wires them all into the Bolt app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.services.runtime import Runtime
from handlers import actions, commands, desk, events, lost_key, messages, provision, views, wizard


def register_listeners(app: AsyncApp, rt: Runtime) -> None:
    # wizard first: its thread-reply listener must see helpdesk replies before the message catch-all
    for module in (wizard, messages, events, actions, commands, views, lost_key, desk, provision):
        module.register(app, rt)
