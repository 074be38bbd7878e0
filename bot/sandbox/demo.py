"""`keydesk demo`: the real bot over HTTP against the simulators, with the conversation shown in the terminal."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

from bot.logs import configure_logging
from bot.sandbox import render
from bot.sandbox.company import Company, seed_company
from bot.sandbox.stack import Stack, open_stack


class Narrator:
    """Drives the simulated people and prints what each of them sees."""

    def __init__(self, stack: Stack, company: Company, console: Console, fast: bool) -> None:
        self.stack = stack
        self.company = company
        self.console = console
        self.fast = fast
        self._seen: dict[str, int] = {}
        self.names = {
            p.slack_id: p.name
            for p in (company.ada, company.grace, company.sam, company.alex, company.morgan, company.lin)
        }

    async def pause(self, seconds: float = 0.8) -> None:
        if not self.fast:
            await asyncio.sleep(seconds)

    def chapter(self, title: str) -> None:
        self.console.print(Rule(f"[bold cyan]{title}"))

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


async def onboarding(n: Narrator) -> None:
    slack, company = n.stack.slack, n.company
    ada, grace, sam = company.ada, company.grace, company.sam
    channel = company.helpdesk_channel
    n.chapter("3 · Ada asks for a Temporary Access Pass")
    await n.user_says(ada.slack_id, "I need to set up my security key")
    await n.until(lambda: slack.messages(channel), "the helpdesk card")
    n.note("The request appears in the private helpdesk channel, with the evidence and each check:")
    n.show_latest(channel, "#helpdesk-keys")
    await n.until(lambda: slack.dm_messages(grace.slack_id), "the manager's DM")
    n.note("Ada's manager, Grace, is asked whether she expects this:")
    n.show_latest(slack.dm_with(grace.slack_id) or "", "DM with Grace Hopper")
    await n.pause()

    n.chapter("4 · The manager confirms, the helpdesk verifies and approves")
    n.note("Grace clicks *Yes, I expect it*.")
    await slack.click(grace.slack_id, "manager_confirm")
    await n.until(
        lambda: "confirmed" in str(slack.messages(channel)[0].blocks), "the card to show the answer"
    )
    n.note(
        "Sam, on the helpdesk, has a quick video call with Ada, checks her photo ID, and clicks *Approve…*:"
    )
    await slack.click(sam.slack_id, "tap_approve")
    modal = await n.until(lambda: slack.open_views(sam.slack_id), "the approval modal")
    n.show_modal(sam.slack_id, "Sam's screen")
    await slack.submit_view(
        sam.slack_id,
        modal[-1].id,
        {"verification": {"method": "video_call_photo_id"}, "note": {"text": "Video call, photo ID matched"}},
    )
    await n.until(
        lambda: (
            "Approved"
            in str(slack.open_views(sam.slack_id)[-1].blocks if slack.open_views(sam.slack_id) else "")
        ),
        "the approval result",
    )
    n.show_modal(sam.slack_id, "Sam's screen")
    n.show_latest(channel, "#helpdesk-keys")
    await n.pause()

    n.chapter("5 · Ada reveals her pass")
    dm = slack.dm_with(ada.slack_id) or ""
    await n.until(lambda: "Reveal" in str(slack.messages(dm)[-1].blocks), "the Reveal button")
    n.note("Ada's DM changed in place. It holds no secret, so notifications can't leak one:")
    n.show_latest(dm, "DM with Ada Lovelace", text_contains="ready")
    n.note("She clicks *Reveal pass*: a modal opens at once, and keydesk creates the pass in Entra.")
    await slack.click(ada.slack_id, "tap_reveal")
    await n.until(
        lambda: any("Valid until" in str(v.blocks) for v in slack.open_views(ada.slack_id)), "the pass"
    )
    n.show_modal(ada.slack_id, "Ada's screen (only she sees this)")
    await n.until(lambda: len(slack.dm_messages(grace.slack_id)) >= 3, "the manager's notice")
    n.note("Grace is told a pass was issued, with a way to stop it if it looks wrong:")
    n.show_latest(slack.dm_with(grace.slack_id) or "", "DM with Grace Hopper", text_contains="issued")


async def first_conversation(n: Narrator) -> None:
    n.chapter("1 · A new hire says hello")
    n.note("Ada Lovelace joined Northwind this week. She has no security key yet and messages keydesk.")
    await n.user_says(n.company.ada.slack_id, "hi there")
    await n.open_home(n.company.ada.slack_id)
    n.chapter("2 · Someone who already has a key")
    await n.open_home(n.company.morgan.slack_id)


SCENARIOS: dict[str, list[Scenario]] = {
    "hello": [first_conversation],
    "onboarding": [onboarding],
}
SCENARIOS["all"] = [s for name, group in SCENARIOS.items() if name != "all" for s in group]


async def run_demo(*, fast: bool = False, scenario: str = "all", console: Console | None = None) -> int:
    console = console or Console()
    if scenario not in SCENARIOS:
        console.print(f"[red]Unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}[/]")
        return 2
    configure_logging("WARNING", "console")
    with tempfile.TemporaryDirectory(prefix="keydesk-demo-") as tmp:
        stack = await open_stack(f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}")
        try:
            company = seed_company(stack.slack, stack.graph)
            await stack.start_app()
            console.print(
                f"[bold]keydesk demo[/]: the real bot on {stack.url}, with simulated Slack at "
                f"{stack.settings.slack_api_url} and Microsoft Graph at {stack.settings.graph_url}.\n"
                "Every step below is a signed HTTP request to the bot; every reply is what the bot sent to Slack."
            )
            narrator = Narrator(stack, company, console, fast)
            for play in SCENARIOS[scenario]:
                await play(narrator)
            console.print(Rule("[bold green]Demo finished"))
        finally:
            await stack.close()
    return 0
