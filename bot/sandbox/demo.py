"""`keydesk demo`: the real bot over HTTP against the simulators, with the conversation shown in the terminal."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from bot.logs import configure_logging
from bot.sandbox.company import seed_company
from bot.sandbox.demo_desk import desk_scenario
from bot.sandbox.demo_lost_key import lost_key_scenario
from bot.sandbox.demo_registration import registration_scenario
from bot.sandbox.narrator import Narrator, Scenario
from bot.sandbox.stack import open_stack


async def onboarding(n: Narrator) -> None:
    slack, company = n.stack.slack, n.company
    ada, grace, sam = company.ada, company.grace, company.sam
    channel = company.helpdesk_channel
    n.chapter("Ada asks for a Temporary Access Pass")
    await n.user_says(ada.slack_id, "I need to set up my security key")
    await n.until(lambda: slack.messages(channel), "the helpdesk card")
    n.note("The request appears in the private helpdesk channel, with the evidence and each check:")
    n.show_latest(channel, "#helpdesk-keys")
    await n.until(lambda: slack.dm_messages(grace.slack_id), "the manager's DM")
    n.note("Ada's manager, Grace, is asked whether she expects this:")
    n.show_latest(slack.dm_with(grace.slack_id) or "", "DM with Grace Hopper")
    await n.pause()

    n.chapter("The manager confirms, the helpdesk verifies and approves")
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

    n.chapter("Ada reveals her pass")
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
    n.chapter("A new hire says hello")
    n.note("Ada Lovelace joined Northwind this week. She has no security key yet and messages keydesk.")
    await n.user_says(n.company.ada.slack_id, "hi there")
    await n.open_home(n.company.ada.slack_id)
    n.chapter("Someone who already has a key")
    await n.open_home(n.company.morgan.slack_id)


SCENARIOS: dict[str, list[Scenario]] = {
    "hello": [first_conversation],
    "onboarding": [onboarding, registration_scenario],
    "lostkey": [lost_key_scenario],
    "desk": [desk_scenario],
}
SCENARIOS["all"] = [s for name, group in SCENARIOS.items() if name != "all" for s in group]


async def run_demo(*, fast: bool = False, scenario: str = "all", console: Console | None = None) -> int:
    console = console or Console()
    if scenario not in SCENARIOS:
        console.print(f"[red]Unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}[/]")
        return 2
    configure_logging("WARNING", "console")
    with tempfile.TemporaryDirectory(prefix="keydesk-demo-") as tmp:
        stack = await open_stack(
            f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}",
            agent_signing_key_file=Path(tmp) / "agent-link.key",
            pin_seal_key_file=Path(tmp) / "pin-seal.key",
            agent_long_poll_seconds=5.0,
        )
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
        except RuntimeError as exc:  # a step timed out or the desk agent failed: say which, plainly
            console.print(f"[bold red]The demo stopped:[/] {exc}", highlight=False)
            return 1
        finally:
            await stack.close()
    return 0
