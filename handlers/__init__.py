"""Slack listeners, one module per surface; `register_listeners` wires them all into the Bolt app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.services.runtime import Runtime
from handlers import actions, commands, events, messages, views


def register_listeners(app: AsyncApp, rt: Runtime) -> None:
    for module in (messages, events, actions, commands, views):
        module.register(app, rt)
