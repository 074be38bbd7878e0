"""The demo's narrator: drives the simulated people and prints what each of them sees."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.rule import Rule

from bot.sandbox import render
from bot.sandbox.company import Company
from bot.sandbox.stack import Stack


class Narrator:
    """Drives the simulated people and prints what each of them sees."""

    def __init__(self, stack: Stack, company: Company, console: Console, fast: bool) -> None:
        self.stack = stack
        self.company = company
        self.console = console
        self.fast = fast
        self._seen: dict[str, int] = {}
        self._chapters = 0
        self.names = {
            p.slack_id: p.name
            for p in (company.ada, company.grace, company.sam, company.alex, company.morgan, company.lin)
        }

    async def pause(self, seconds: float = 0.8) -> None:
        if not self.fast:
            await asyncio.sleep(seconds)

    def chapter(self, title: str) -> None:
        self._chapters += 1
        self.console.print(Rule(f"[bold cyan]{self._chapters} · {title}"))

    def note(self, text: str) -> None:
        self.console.print(f"[italic dim]{text}[/]")

    async def new_messages(self, channel: str, *, at_least: int = 1, timeout: float = 10.0) -> list[Any]:
        """Wait for the bot's next message(s) in a channel and return the ones not yet shown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            messages = [
                m for m in self.stack.slack.messages(channel) if m.user == self.stack.slack.config.bot_user_id
            ]
            fresh = messages[self._seen.get(channel, 0) :]
            if len(fresh) >= at_least or loop.time() > deadline:
                self._seen[channel] = len(messages)
                return fresh
            await asyncio.sleep(0.05)

    async def user_says(self, person_id: str, text: str) -> None:
        self.console.print(render.user_panel(self.names.get(person_id, person_id), "DM to keydesk", text))
        await self.stack.slack.send_dm(person_id, text)
        await self.pause()
        channel = await self._wait_dm(person_id)
        for message in await self.new_messages(channel):
            self.show_message(message, f"DM with {self.names.get(person_id, person_id)}")

    async def _wait_dm(self, person_id: str, timeout: float = 10.0) -> str:
        for _ in range(int(timeout / 0.05)):
            channel = self.stack.slack.dm_with(person_id)
            if channel:
                return channel
            await asyncio.sleep(0.05)
        raise RuntimeError(f"keydesk never opened a DM with {person_id}")

    def show_message(self, message: Any, where: str) -> None:
        self.console.print(render.message_panel("keydesk", where, message.text, message.blocks, self.names))

    async def open_home(self, person_id: str) -> None:
        self.note(f"{self.names.get(person_id, person_id)} opens keydesk's Home tab.")
        await self.stack.slack.open_home(person_id)
        for _ in range(200):
            view = self.stack.slack.home_view(person_id)
            if view is not None:
                self.console.print(render.view_panel(view.to_api(), "App Home", self.names))
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("App Home was never published")

    async def until(self, condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
        """Poll until the bot has done something (it works after its ack, like the real thing)."""
        for _ in range(int(timeout / 0.05)):
            result = condition()
            if result:
                return result
            await asyncio.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}")

    def show_latest(self, channel: str, where: str, *, text_contains: str = "") -> None:
        """Show the current state of the bot's latest message in a channel (messages are edited in place)."""
        mine = [
            m for m in self.stack.slack.messages(channel) if m.user == self.stack.slack.config.bot_user_id
        ]
        mine = [m for m in mine if text_contains in m.text]
        if mine:
            self.show_message(mine[-1], where)

    def show_modal(self, person_id: str, where: str) -> Any:
        views = self.stack.slack.open_views(person_id)
        if views:
            self.console.print(render.view_panel(views[-1].to_api(), where, self.names))
            return views[-1]
        return None


Scenario = Callable[[Narrator], Awaitable[None]]
