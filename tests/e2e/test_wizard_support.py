"""Shared pieces of the wizard's end-to-end tests (this module holds no tests itself).

`wire` applies the wiring issue #4 asks the lead to make, for as long as it is not in the app yet; each
step checks first whether the app already does it, so the tests keep passing once it is wired for real:
- handlers.wizard registered, ahead of handlers.messages' catch-all for message events;
- the registration deadlines registered; the wizards table created (until the migration exists);
- delivery._mark_issued -> registration.start_after_reveal; delivery.expire_pass ->
  registration.on_request_changed; conversation.on_direct_message -> stuck.relay_from_user first;
  conversation.refresh_home -> registration.home_blocks as `extra`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect as inspect_db

import handlers
from bot.app import Keydesk
from bot.deadlines import Deadline
from bot.domain.intents import Intent
from bot.sandbox.company import Company, Person
from bot.sandbox.slack_sim import SimMessage, SlackSimulator
from bot.sandbox.stack import Stack
from bot.services import conversation, delivery, registration, stuck
from bot.services.runtime import Runtime
from bot.slack import welcome, wizard_views
from bot.slack.ids import Action
from bot.store.db import Base
from bot.store.models.wizard import Wizard
from handlers import wizard as wizard_handlers

from .helpers import ShiftableClock, bot_dms, current, eventually, message_text, revealed, settle

METHODS_LIST = r"^/users/[^/]+/authentication/methods$"
YUBIKEY_5_NFC = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


# --- the bridge -----------------------------------------------------------------------------------------
async def wire(keydesk: Keydesk, monkeypatch: pytest.MonkeyPatch) -> None:
    rt, bolt = keydesk.rt, keydesk.bolt
    async with rt.db.engine.begin() as conn:
        await conn.run_sync(_wizards_table_as_modelled)
    if "wizard" not in handlers.register_listeners.__code__.co_names:
        listeners = bolt._async_listeners  # test-only: ahead of the message catch-all
        before = len(listeners)
        wizard_handlers.register(bolt, rt)
        added = listeners[before:]
        del listeners[before:]
        listeners[0:0] = added
    with contextlib.suppress(ValueError):
        registration.register_registration_deadlines(rt)
    _hook_reveal(monkeypatch)
    _hook_dm(monkeypatch)
    _hook_home(monkeypatch)
    _hook_expiry(rt)


def _wizards_table_as_modelled(sync: Any) -> None:
    """Create the table, or re-create it when the migration in the tree was made from an older model."""
    table = Base.metadata.tables[Wizard.__tablename__]
    existing = (
        {c["name"] for c in inspect_db(sync).get_columns(table.name)}
        if inspect_db(sync).has_table(table.name)
        else None
    )
    if existing is not None and existing != {c.name for c in table.columns}:
        table.drop(sync)
        existing = None
    if existing is None:
        table.create(sync)


def _wired(function: Any, name: str) -> bool:
    return getattr(function, "_wizard_bridge", False) or name in inspect.getsource(function)


def _hook_reveal(monkeypatch: pytest.MonkeyPatch) -> None:
    original = delivery._mark_issued
    if _wired(original, "registration"):
        return

    async def mark_issued(rt: Runtime, request: Any, tap: Any, now: Any) -> None:
        await original(rt, request, tap, now)
        await registration.start_after_reveal(rt, request.id)

    mark_issued._wizard_bridge = True  # type: ignore[attr-defined]
    monkeypatch.setattr(delivery, "_mark_issued", mark_issued)


def _hook_dm(monkeypatch: pytest.MonkeyPatch) -> None:
    original = conversation.on_direct_message
    if _wired(original, "relay_from_user"):
        return

    async def on_direct_message(rt: Runtime, user_id: str, text: str) -> Intent:
        if await stuck.relay_from_user(rt, user_id, text):
            return Intent.HELP
        return await original(rt, user_id, text)

    on_direct_message._wizard_bridge = True  # type: ignore[attr-defined]
    monkeypatch.setattr(conversation, "on_direct_message", on_direct_message)


def _hook_home(monkeypatch: pytest.MonkeyPatch) -> None:
    original = conversation.refresh_home
    if _wired(original, "home_blocks"):
        return
    from bot.directory import DirectoryError
    from bot.services import identity

    async def refresh_home(rt: Runtime, user_id: str) -> None:  # conversation.refresh_home plus `extra`
        slack_user = await rt.slack.user(user_id)
        name = slack_user.real_name or slack_user.name
        extra = await registration.home_blocks(rt, user_id)
        try:
            who = await identity.resolve(rt, user_id)
            methods = await rt.directory.list_methods(who.entra.id)
        except identity.IdentityRefused as refused:
            view = welcome.home(
                name, None, problem=refused.user_message(rt.settings.support_contact), extra=extra
            )
        except DirectoryError:
            view = welcome.home(name, None, extra=extra)
        else:
            view = welcome.home(name, methods, tz_offset=slack_user.tz_offset, extra=extra)
        await rt.slack.publish_home(user_id, view)

    refresh_home._wizard_bridge = True  # type: ignore[attr-defined]
    monkeypatch.setattr(conversation, "refresh_home", refresh_home)


def _hook_expiry(rt: Runtime) -> None:
    handlers_by_kind = rt.deadlines._handlers  # test-only: the handler timers registered
    original = handlers_by_kind[delivery.PASS_EXPIRY_DEADLINE]
    if getattr(original, "_wizard_bridge", False) or "on_request_changed" in inspect.getsource(
        delivery.expire_pass
    ):
        return

    async def expire_then_tell_wizard(deadline: Deadline) -> None:
        await original(deadline)
        await registration.on_request_changed(rt, str(deadline.payload["request_id"]))

    expire_then_tell_wizard._wizard_bridge = True  # type: ignore[attr-defined]
    handlers_by_kind[delivery.PASS_EXPIRY_DEADLINE] = expire_then_tell_wizard


@pytest.fixture
async def wired(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    await wire(stack.keydesk, monkeypatch)
    yield stack


async def restart(stack: Stack, clock: ShiftableClock, monkeypatch: pytest.MonkeyPatch) -> None:
    await stack.stop_app()
    await stack.start_app(clock=clock)
    await wire(stack.keydesk, monkeypatch)


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
