"""Direct messages to the bot."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.text import clean
from bot.services import conversation
from bot.services.runtime import Runtime


async def is_direct_message(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" and not event.get("subtype") and not event.get("bot_id")


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.event("message", matchers=[is_direct_message])
    async def direct_message(event: dict[str, Any]) -> None:
        async with rt.after_ack():
            await conversation.on_direct_message(rt, event["user"], clean(event.get("text"), 4000))

    @app.event("message")
    async def other_messages() -> None:
        """Edits, joins and channel chatter are not for us; acknowledge and move on."""
