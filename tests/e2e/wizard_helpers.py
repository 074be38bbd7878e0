"""Shared pieces of the wizard's end-to-end tests: driving and reading the wizard (no tests here)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.sandbox.company import Company, Person
from bot.sandbox.slack_sim import SimMessage, SlackSimulator
from bot.sandbox.stack import Stack
from bot.slack import wizard_views
from bot.slack.ids import Action
from bot.store.models.wizard import Wizard

from .helpers import ShiftableClock, bot_dms, current, eventually, message_text, revealed, settle

METHODS_LIST = r"^/users/[^/]+/authentication/methods$"
YUBIKEY_5_NFC = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


async def restart(stack: Stack, clock: ShiftableClock, monkeypatch: pytest.MonkeyPatch) -> None:
    await stack.stop_app()
    await stack.start_app(clock=clock)


# --- reading the wizard ---------------------------------------------------------------------------------
def wizard_messages(slack: SlackSimulator, person: Person) -> list[SimMessage]:
    """The bot's DM messages that are a wizard (they carry the wizard's navigation or a result)."""
    marks = (
        wizard_views.NAV_BLOCK,
        wizard_views.RESULT_BLOCK,
        wizard_views.AGAIN_BLOCK,
        wizard_views.CHOOSE_PREFIX,
    )
    return [
        m
        for m in bot_dms(slack, person.slack_id)
        if any(str(block.get("block_id", "")).startswith(marks) for block in m.blocks)
    ]


async def wizard_message(
    stack: Stack, person: Person, contains: str = "", timeout: float = 3.0
) -> SimMessage:
    def probe() -> SimMessage | None:
        found = wizard_messages(stack.slack, person)
        return found[-1] if found and contains in message_text(found[-1]) else None

    return await eventually(probe, f"{person.name}'s wizard showing {contains!r}", timeout)


async def press(
    stack: Stack,
    person: Person,
    action: Action,
    expect: str,
    *,
    block_id: str | None = None,
    timeout: float = 3.0,
) -> SimMessage:
    """Click a wizard button on the current message and wait until it shows `expect`."""
    message = await wizard_message(stack, person)
    await stack.slack.click(person.slack_id, action, message=current(stack.slack, message), block_id=block_id)
    return await wizard_message(stack, person, expect, timeout)


async def row_of(stack: Stack, person: Person) -> Wizard:
    from bot.store import wizard_repo

    async with stack.keydesk.rt.db.read() as session:
        row = await wizard_repo.latest_for_user(session, person.slack_id)
    assert row is not None
    return row


async def revealed_wizard(stack: Stack, company: Company) -> SimMessage:
    """Ada up to her revealed pass; returns the wizard message that follows the reveal."""
    await revealed(stack, company)
    return await wizard_message(stack, company.ada, "Let's do this together")


def methods_polls(stack: Stack, entra_id: str) -> int:
    return len([r for r in stack.graph.requests_to("GET", METHODS_LIST) if f"/users/{entra_id}/" in r.path])


async def advance(stack: Stack, clock: ShiftableClock, seconds: float) -> None:
    """Move the app's clock forward and let the deadlines that fell due run."""
    clock.advance(timedelta(seconds=seconds))
    await settle(stack, quiet=0.3)
