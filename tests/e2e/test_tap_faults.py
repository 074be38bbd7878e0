"""Faults on the way to a pass: Graph throttling and outages, a lost answer, Slack failing to show the
pass, and a crash between creating the pass and showing it. Nothing unseen may stay alive in Entra."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.sandbox.company import Company
from bot.sandbox.graph_sim import Fault
from bot.sandbox.stack import Stack
from bot.slack.ids import Action

from .helpers import (
    TAP_COLLECTION,
    ShiftableClock,
    action_ids,
    approve,
    approved_dm,
    ask_for_pass,
    audit,
    confirmed_card,
    current,
    eventually,
    find_card,
    pass_value,
    quiesce,
    reveal,
    settle,
    tap_deletes,
    tap_posts,
    text_of,
    view_text,
    wait_audit,
    wait_card,
    wait_dm,
)

QUICK_RETRY = 0.05  # Retry-After the simulated Graph sends with its 503s, to keep retries fast


def live_taps(stack: Stack, entra_id: str) -> list[Any]:
    return [t for t in stack.graph.tenant.taps_of(entra_id) if not t.deleted]


async def test_throttled_creation_says_busy_then_shows_the_one_pass(stack: Stack, company: Company) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    dm = await approved_dm(stack, company)
    # More 429s than the gateway retries on its own, so keydesk has to wait and tell Ada.
    graph.add_fault(Fault(method="POST", path=TAP_COLLECTION, status=429, retry_after=0.1, times=5))

    view = await reveal(slack, ada.slack_id, dm, timeout=5.0)

    updates = [
        text_of(c.params["view"]) for c in slack.calls_to("views.update") if c.params["view_id"] == view.id
    ]
    busy = [i for i, text in enumerate(updates) if "busy right now" in text]
    shown = [i for i, text in enumerate(updates) if pass_value_in(text)]
    assert busy and shown and busy[-1] < shown[0], updates
    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert pass_value(view) == tap.value
    assert [r.status for r in tap_posts(graph, ada.entra_id)] == [429] * 5 + [201]
    await wait_audit(stack, "tap.issued")
    await settle(stack)
    assert len(await audit(stack, "tap.issued")) == 1


def pass_value_in(text: str) -> bool:
    return "Here is your *Temporary Access Pass*" in text


@pytest.mark.parametrize(
    "path",
    [".*", "roleEligibilityScheduleInstances"],
    ids=["graph_down", "pim_lookup_down"],
)
async def test_graph_down_during_the_checks_fails_closed(stack: Stack, company: Company, path: str) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    graph.add_fault(Fault(path=path, status=503, retry_after=QUICK_RETRY, times=0))

    await ask_for_pass(stack, ada.slack_id)

    await wait_dm(slack, ada.slack_id, "Microsoft Entra didn't answer. Nothing was requested")
    row = await wait_audit(stack, "tap.request.failed")
    assert (row.outcome, row.details["reason"]) == ("failed", "directory_unavailable")
    await settle(stack)
    assert find_card(slack) is None
    assert not [e for e in await audit(stack) if e.action == "tap.request.created"]
    assert tap_posts(graph) == []

    graph.clear_faults()  # once Entra answers again, asking again works
    await ask_for_pass(stack, ada.slack_id)
    await wait_card(slack, "Waiting for approval")


async def test_graph_down_while_checking_the_approver_decides_nothing(stack: Stack, company: Company) -> None:
    slack, graph = stack.slack, stack.graph
    card = await confirmed_card(stack, company)
    graph.add_fault(Fault(status=503, retry_after=QUICK_RETRY, times=0))

    outcome = await approve(slack, company.sam.slack_id, card)

    assert "couldn't check your approver rights" in outcome
    row = await wait_audit(stack, "tap.approve.refused")
    assert row.details["reason"] == "not_authorised"
    assert "Waiting for approval" in text_of(current(slack, card).blocks)
    assert tap_posts(graph) == []


async def test_slack_failing_to_show_the_pass_deletes_it(stack: Stack, company: Company) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    dm = await approved_dm(stack, company)
    slack.add_fault("views.update", error="internal_error", status=500)

    await slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm)

    await wait_dm(slack, ada.slack_id, "I couldn't show your pass, so I cancelled it")
    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert tap.deleted
    assert [r.path.rsplit("/", 1)[1] for r in tap_deletes(graph, ada.entra_id)] == [tap.id]
    row = await wait_audit(stack, "tap.issue.abandoned")
    assert row.details["reason"].startswith("modal_failed")
    assert not await audit(stack, "tap.issued")
    await settle(stack)
    # The request is back to approved: Reveal works again and shows a new, live pass.
    assert Action.TAP_REVEAL in action_ids(current(slack, dm).blocks)
    view = await reveal(slack, ada.slack_id, dm)
    [live] = live_taps(stack, ada.entra_id)
    assert pass_value(view) == live.value != tap.value


async def test_slack_refusing_to_open_the_window_creates_nothing(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    dm = await approved_dm(stack, company)
    slack.add_fault("views.open", error="expired_trigger_id")

    await slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm)

    await wait_dm(slack, ada.slack_id, "Slack didn't let me open the window")
    await settle(stack)
    assert tap_posts(stack.graph) == []
    assert not await audit(stack, "tap.issue.started")
    view = await reveal(slack, ada.slack_id, dm)  # the next click works
    assert pass_value(view) == live_taps(stack, ada.entra_id)[0].value


async def test_answer_lost_after_graph_created_the_pass_is_reconciled(stack: Stack, company: Company) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    dm = await approved_dm(stack, company)
    graph.add_fault(Fault(method="POST", path=TAP_COLLECTION, drop_after_commit=True))

    view = await reveal(slack, ada.slack_id, dm)

    assert pass_value(view) is None
    assert "Nothing usable was left behind" in view_text(view)
    assert "press *Reveal pass* again" in view_text(view)
    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert tap.deleted  # created by Graph, value never seen by anyone: deleted
    assert len(tap_posts(graph, ada.entra_id)) == 1  # never blindly retried
    row = await wait_audit(stack, "tap.issue.abandoned")
    assert row.details["passes_deleted"] == 1
    await settle(stack)
    view = await reveal(slack, ada.slack_id, dm)
    [live] = live_taps(stack, ada.entra_id)
    assert pass_value(view) == live.value


async def test_crash_between_creating_and_showing_is_cleaned_up_after_restart(
    stack: Stack, company: Company, app_clock: ShiftableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    dm = await approved_dm(stack, company)
    messenger = stack.keydesk.rt.slack
    show = messenger.update_view

    async def die_before_showing_the_pass(view_id: str, view: dict[str, Any]) -> None:
        if any(block.get("block_id") == "pass" for block in view["blocks"]):
            raise asyncio.CancelledError  # the process is killed right here
        await show(view_id, view)

    monkeypatch.setattr(messenger, "update_view", die_before_showing_the_pass)
    await slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm)
    await wait_audit(stack, "tap.issue.started")
    [tap] = await eventually(lambda: graph.tenant.taps_of(ada.entra_id), "the orphan pass in Entra")
    await settle(stack)
    assert not tap.deleted  # an orphan: alive in Entra, seen by nobody

    await quiesce(stack)
    await stack.stop_app()
    await stack.start_app(clock=app_clock)
    app_clock.advance(timedelta(minutes=3))

    await wait_dm(slack, ada.slack_id, "Something interrupted me", timeout=3.0)
    assert tap.deleted
    row = await wait_audit(stack, "tap.issue.abandoned")
    assert (row.details["reason"], row.details["passes_deleted"]) == ("orphan", 1)
    await settle(stack)
    view = await reveal(slack, ada.slack_id, dm)
    [live] = live_taps(stack, ada.entra_id)
    assert pass_value(view) == live.value
