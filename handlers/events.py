"""Non-message events: App Home."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services import conversation
from bot.services.runtime import Runtime


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab") == "home":
            async with rt.after_ack():
                await conversation.refresh_home(rt, event["user"])
