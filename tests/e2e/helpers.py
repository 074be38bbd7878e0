"""Small helpers for driving keydesk through the Slack simulator and reading what people saw."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.audit import AuditEntry
from bot.sandbox.company import DOMAIN, Company, Person
from bot.sandbox.graph_sim import GraphSimulator, RecordedRequest
from bot.sandbox.slack_sim import Delivery, DeliveryKind, SimMessage, SimView, SlackSimulator, payloads
from bot.sandbox.slack_sim.interactions import action_payload, find_element
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.slack.ids import Action, ViewId

T = TypeVar("T")
POLL_SECONDS = 0.02
TAP_COLLECTION = r"/authentication/temporaryAccessPassMethods$"
SECURITY_ALERT = ":rotating_light: *Security alert.*"  # how a loud alert opens in the helpdesk channel
TAP_ITEM = r"/authentication/temporaryAccessPassMethods/[^/]+$"


class ShiftableClock:
    """The wall clock plus an offset that a test moves forward (deadlines then fall due for real)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


async def quiesce(stack: Stack) -> None:
    """Pause the deadline pump and let a run in flight finish.

    Keydesk.stop() shuts APScheduler down, and its asyncio executor cancels a running job: a pump
    cancelled inside a SQLite transaction leaves aiosqlite's close waiting forever, which hangs the
    test's event loop. Until stop() awaits the pump itself, tests stop it cleanly first.
    """
    if stack.running is None:
        return
    scheduler = stack.keydesk.scheduler
    if not scheduler.running:
        return
    scheduler.pause()
    executor = scheduler._lookup_executor("default")
    running = [f for f in getattr(executor, "_pending_futures", ()) if not f.done()]
    if running:
        await asyncio.wait(running, timeout=5)


# --- waiting -------------------------------------------------------------------------------------
async def eventually(probe: Callable[[], T | None], what: str, timeout: float = 2.0) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        found = probe()
        if found:
            return found
        if loop.time() > give_up:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def settle(stack: Stack, quiet: float = 0.15, timeout: float = 3.0) -> None:
    """Wait until neither simulator has seen a request for `quiet` seconds (background work done)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    seen = (len(stack.slack.calls), len(stack.graph.requests))
    still_since = loop.time()
    while loop.time() < give_up:
        await asyncio.sleep(POLL_SECONDS)
        now = (len(stack.slack.calls), len(stack.graph.requests))
        if now != seen:
            seen, still_since = now, loop.time()
        elif loop.time() - still_since >= quiet:
            return
    raise AssertionError("keydesk kept calling Slack or Graph; it never settled")


# --- reading what people see ---------------------------------------------------------------------
def text_of(value: Any) -> str:
    """Every `text` string inside a Block Kit structure, in order, one per line."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "text" and isinstance(item, str):
                    parts.append(item)
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return "\n".join(parts)


def message_text(message: SimMessage) -> str:
    return message.text + "\n" + text_of(message.blocks)


def view_text(view: SimView) -> str:
    return text_of(view.title) + "\n" + text_of(view.blocks)


def action_ids(blocks: list[dict[str, Any]]) -> set[str]:
    ids: set[str] = set()
    for block in blocks:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and "action_id" in element:
                ids.add(str(element["action_id"]))
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and "action_id" in accessory:
            ids.add(str(accessory["action_id"]))
    return ids


def bot_dms(slack: SlackSimulator, user_id: str) -> list[SimMessage]:
    return [m for m in slack.dm_messages(user_id) if m.is_bot]


def channel_messages(slack: SlackSimulator, channel: str = HELPDESK_CHANNEL) -> list[SimMessage]:
    return [m for m in slack.messages(channel) if m.is_bot]


async def wait_dm(slack: SlackSimulator, user_id: str, contains: str, timeout: float = 2.0) -> SimMessage:
    """The newest message from the bot in the person's DM whose text (or blocks) contains `contains`."""

    def probe() -> SimMessage | None:
        hits = [m for m in bot_dms(slack, user_id) if contains in message_text(m)]
        return hits[-1] if hits else None

    return await eventually(probe, f"a DM to {user_id} containing {contains!r}", timeout)


async def wait_channel(
    slack: SlackSimulator,
    contains: str,
    channel: str = HELPDESK_CHANNEL,
    timeout: float = 2.0,
) -> SimMessage:
    def probe() -> SimMessage | None:
        hits = [m for m in channel_messages(slack, channel) if contains in message_text(m)]
        return hits[-1] if hits else None

    return await eventually(probe, f"a message in {channel} containing {contains!r}", timeout)


def find_card(slack: SlackSimulator) -> SimMessage | None:
    cards = [
        m
        for m in channel_messages(slack)
        if m.text.startswith("Temporary Access Pass request for") and not m.thread_ts
    ]
    return cards[-1] if cards else None


async def wait_card(slack: SlackSimulator, contains: str = "", timeout: float = 2.0) -> SimMessage:
    """The request card in the helpdesk channel, once its text contains `contains`."""

    def probe() -> SimMessage | None:
        card = find_card(slack)
        return card if card is not None and contains in message_text(card) else None

    return await eventually(probe, f"the helpdesk card containing {contains!r}", timeout)


def current(slack: SlackSimulator, message: SimMessage) -> SimMessage:
    """The message as it stands now (after any chat.update)."""
    for candidate in slack.messages(message.channel):
        if candidate.ts == message.ts:
            return candidate
    raise AssertionError(f"message {message.ts} is gone from {message.channel}")


async def wait_view(
    slack: SlackSimulator,
    user_id: str,
    accept: Callable[[str], bool],
    what: str,
    timeout: float = 2.0,
) -> SimView:
    """The user's top modal once its text satisfies `accept`."""

    def probe() -> SimView | None:
        views = slack.open_views(user_id)
        return views[-1] if views and accept(view_text(views[-1])) else None

    return await eventually(probe, f"{user_id}'s modal {what}", timeout)


# --- doing things --------------------------------------------------------------------------------
async def ask_for_pass(stack: Stack, user_id: str, words: str = "set up my key") -> Delivery:
    return await stack.slack.send_dm(user_id, words)


async def open_modal(
    slack: SlackSimulator, user_id: str, action_id: str, message: SimMessage, callback_id: str
) -> SimView:
    """Click a button that opens a modal; return the modal once Slack shows it."""
    await slack.click(user_id, action_id, message=current(slack, message))

    def probe() -> SimView | None:
        views = [v for v in slack.open_views(user_id) if v.callback_id == callback_id]
        return views[-1] if views else None

    return await eventually(probe, f"{user_id}'s {callback_id} modal")


async def stale_click(slack: SlackSimulator, user_id: str, snapshot: SimMessage, action_id: str) -> Delivery:
    """Press a button on an outdated copy of a message (a client that has not refreshed yet).

    `SlackSimulator.click` always uses the message as it stands now, so this builds the same signed
    block_actions payload from the snapshot the person still sees.
    """
    core = slack.core
    user = slack.user(user_id)
    channel = slack.channel(snapshot.channel)
    found = find_element(snapshot.blocks, action_id)
    assert found is not None, f"the snapshot has no {action_id}"
    action = action_payload(
        found[1], found[0], payloads.action_ts(core), value=None, selected=None, forge=False
    )
    trigger = core.views.issue_trigger(user.id)
    response_url = core.issue_response_url(channel.id, user.id, snapshot.ts)
    payload = payloads.block_actions_on_message(
        core, user, snapshot, channel, action, trigger, response_url, {}
    )
    return await slack.deliver(DeliveryKind.INTERACTIVE, payload)


def _decided(text: str) -> bool:
    return ":white_check_mark:" in text or ":no_entry:" in text


async def submit_approval(
    slack: SlackSimulator,
    approver: str,
    modal: SimView,
    method: str = "manager_confirmed",
    note: str = "",
    *,
    forge: bool = False,
) -> str:
    """Submit an opened approve modal; returns what the approver reads at the end."""
    values: dict[str, dict[str, Any]] = {"verification": {"method": method}}
    if note:
        values["note"] = {"text": note}
    await slack.submit_view(approver, modal.id, values, forge=forge)
    view = await eventually(
        lambda: (v := slack.view(modal.id)) is not None and _decided(view_text(v)) and v,
        f"the outcome in {approver}'s approve modal",
    )
    return view_text(view)


async def approve(
    slack: SlackSimulator, approver: str, card: SimMessage, method: str = "manager_confirmed", note: str = ""
) -> str:
    modal = await open_modal(slack, approver, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    return await submit_approval(slack, approver, modal, method, note)


async def deny(slack: SlackSimulator, approver: str, card: SimMessage, reason: str) -> str:
    modal = await open_modal(slack, approver, Action.TAP_DENY, card, ViewId.TAP_DENY)
    await slack.submit_view(approver, modal.id, {"reason": {"text": reason}})
    view = await eventually(
        lambda: (v := slack.view(modal.id)) is not None and "Recording" not in view_text(v) and v,
        f"the outcome in {approver}'s deny modal",
    )
    return view_text(view)


def pass_value(view: SimView) -> str | None:
    """The pass shown in a modal (the ```code``` in the block `pass`), if any."""
    for block in view.blocks:
        if block.get("block_id") == "pass":
            return str(block["text"]["text"]).strip("`")
    return None


async def reveal(
    slack: SlackSimulator,
    user_id: str,
    message: SimMessage,
    timeout: float = 2.0,
    *,
    stale: bool = False,
    forge: bool = False,
) -> SimView:
    """Click Reveal pass; return the modal once it shows the pass or a problem (not 'creating').

    `stale=True` presses the button on `message` as given, even if the bot has since changed it;
    `forge=True` lets someone press it who cannot see the message (a crafted request).
    """
    since = len(slack.calls)
    if stale:
        await stale_click(slack, user_id, message, Action.TAP_REVEAL)
    else:
        await slack.click(user_id, Action.TAP_REVEAL, message=current(slack, message), forge=forge)
    opened = await slack.wait_for("views.open", since=since)
    view_id = str(opened.response["view"]["id"])

    def probe() -> SimView | None:
        view = slack.view(view_id)
        if view is None:
            return None
        text = view_text(view)
        return None if "Creating your pass" in text or "busy right now" in text else view

    return await eventually(probe, f"{user_id}'s pass modal to settle", timeout)


# --- what Graph and the audit log saw ------------------------------------------------------------
def tap_posts(graph: GraphSimulator, entra_id: str | None = None) -> list[RecordedRequest]:
    found = graph.requests_to("POST", TAP_COLLECTION)
    return [r for r in found if entra_id is None or f"/users/{entra_id}/" in r.path]


def tap_deletes(graph: GraphSimulator, entra_id: str | None = None) -> list[RecordedRequest]:
    found = graph.requests_to("DELETE", TAP_ITEM)
    return [r for r in found if entra_id is None or f"/users/{entra_id}/" in r.path]


async def audit(stack: Stack, prefix: str | None = None) -> list[AuditEntry]:
    return await stack.keydesk.rt.audit.entries(action_prefix=prefix)


async def audit_actions(stack: Stack, prefix: str = "tap.") -> list[str]:
    return [e.action for e in await audit(stack, prefix)]


async def wait_audit(stack: Stack, action: str, timeout: float = 2.0) -> AuditEntry:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        hits = [e for e in await audit(stack) if e.action == action]
        if hits:
            return hits[-1]
        if loop.time() > give_up:
            raise AssertionError(f"no audit row {action!r} within {timeout}s")
        await asyncio.sleep(POLL_SECONDS)


# --- people and stages of the flow ---------------------------------------------------------------
def add_new_hire(stack: Stack, slack_id: str, handle: str, name: str, manager: Person | None) -> Person:
    """Another employee with nothing registered yet, in both Slack and Entra."""
    email = f"{handle}@{DOMAIN}"
    user = stack.graph.tenant.add_user(
        name, email, department="Engineering", job_title="Engineer", manager_id=manager and manager.entra_id
    )
    stack.slack.add_user(slack_id, handle, real_name=name, email=email)
    return Person(slack_id=slack_id, entra_id=user.id, name=name, email=email)


async def confirmed_card(stack: Stack, company: Company, person: Person | None = None) -> SimMessage:
    """`person` (Ada by default) asks; their manager Grace confirms; returns the card, ready to approve."""
    slack = stack.slack
    person = person or company.ada
    await ask_for_pass(stack, person.slack_id)
    question = await wait_dm(slack, company.grace.slack_id, f"Did you expect {person.name}")
    await slack.click(company.grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    return await wait_card(slack, ":white_check_mark: confirmed")


async def approved_dm(
    stack: Stack, company: Company, person: Person | None = None, approver: Person | None = None
) -> SimMessage:
    """Up to an approved request; returns the person's DM with the Reveal button."""
    person = person or company.ada
    card = await confirmed_card(stack, company, person)
    outcome = await approve(stack.slack, (approver or company.sam).slack_id, card)
    assert ":white_check_mark:" in outcome, outcome
    return await wait_dm(stack.slack, person.slack_id, "Your Temporary Access Pass is ready")


async def revealed(stack: Stack, company: Company) -> tuple[SimView, SimMessage]:
    """Up to Ada seeing her pass; returns the modal and her DM."""
    dm = await approved_dm(stack, company)
    view = await reveal(stack.slack, company.ada.slack_id, dm)
    assert pass_value(view), view_text(view)
    return view, current(stack.slack, dm)
