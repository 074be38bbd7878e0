"""The Temporary Access Pass journey end to end: signed Slack requests into the running app, with Slack
and Microsoft Graph simulated. Assertions are on what people saw, what Graph received and the audit log."""

from __future__ import annotations

from datetime import timedelta

from bot.sandbox.company import Company
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.slack.ids import Action

from .helpers import (
    ShiftableClock,
    action_ids,
    approve,
    ask_for_pass,
    audit,
    audit_actions,
    eventually,
    message_text,
    pass_value,
    reveal,
    settle,
    tap_deletes,
    tap_posts,
    view_text,
    wait_card,
    wait_channel,
    wait_dm,
)


async def issued_pass(stack: Stack, company: Company) -> str:
    """Run the flow up to a revealed pass for Ada; returns the value she saw."""
    slack = stack.slack
    await ask_for_pass(stack, company.ada.slack_id)
    question = await wait_dm(slack, company.grace.slack_id, "Did you expect")
    await slack.click(company.grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")
    assert ":white_check_mark:" in await approve(slack, company.sam.slack_id, card)
    ready = await wait_dm(slack, company.ada.slack_id, "Your Temporary Access Pass is ready")
    view = await reveal(slack, company.ada.slack_id, ready)
    value = pass_value(view)
    assert value
    return value


async def test_happy_path_request_confirm_approve_reveal(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, graph = stack.slack, stack.graph
    ada, grace, sam = company.ada, company.grace, company.sam

    await ask_for_pass(stack, ada.slack_id, "Hi! Can you help me set up my key?")

    status = await wait_dm(slack, ada.slack_id, "with the helpdesk")
    assert "asked your manager" in message_text(status)
    card = await wait_card(slack, "Waiting for approval")
    card_text = message_text(card)
    for evidence in (
        "Ada Lovelace",
        "ada@northwind.example",
        "Engineering",
        "Software Engineer",
        "Grace Hopper",
    ):
        assert evidence in card_text
    assert card_text.count(":white_check_mark:") == 9, card_text  # every automatic check passed
    assert "asked, no answer yet" in card_text
    assert {Action.TAP_APPROVE, Action.TAP_DENY} <= action_ids(card.blocks)
    question = await wait_dm(slack, grace.slack_id, "Did you expect Ada Lovelace")

    await slack.click(grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")
    await wait_dm(slack, grace.slack_id, "Thanks: you confirmed")

    outcome = await approve(slack, sam.slack_id, card, "manager_confirmed", "Grace confirmed on a call")
    assert "Approved" in outcome
    card = await wait_card(slack, f"*Approved* by <@{sam.slack_id}>")
    assert Action.TAP_APPROVE not in action_ids(card.blocks)
    ready = await wait_dm(slack, ada.slack_id, "Your Temporary Access Pass is ready")
    assert action_ids(ready.blocks) == {Action.TAP_REVEAL}
    assert ready.ts == status.ts  # one DM, updated in place
    assert tap_posts(graph) == []  # nothing is created before the click

    view = await reveal(slack, ada.slack_id, ready)

    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert pass_value(view) == tap.value
    assert tap.lifetime_minutes == stack.settings.tap_lifetime_minutes == 60
    assert tap.is_usable_once is True
    text = view_text(view)
    assert "It works *once*." in text
    assert stack.settings.sign_in_url in text
    [post] = tap_posts(graph, ada.entra_id)
    assert (post.json["lifetimeInMinutes"], post.json["isUsableOnce"]) == (60, True)
    dm = await wait_dm(slack, ada.slack_id, "You revealed it 1×")
    assert dm.ts == status.ts
    notice = await wait_dm(slack, grace.slack_id, "A Temporary Access Pass was issued to Ada Lovelace")
    assert Action.MANAGER_LOOKS_WRONG in action_ids(notice.blocks)
    await wait_card(slack, "Pass issued")
    await settle(stack)

    assert await audit_actions(stack) == [
        "tap.request.created",
        "tap.manager.asked",
        "tap.manager.answered",
        "tap.request.approved",
        "tap.issue.started",
        "tap.issued",
        "tap.notified",
    ]
    entries = {e.action: e for e in await audit(stack)}
    approved = entries["tap.request.approved"]
    assert approved.actor == f"slack:{sam.slack_id}"
    assert approved.details["verification"] == "manager_confirmed"
    assert entries["tap.issued"].details["tap_id"] == tap.id
    assert entries["tap.issued"].target == f"entra:{ada.entra_id}"
    assert (await stack.keydesk.rt.audit.verify()).ok


async def test_decision_deadline_expires_the_request(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack = stack.slack
    await ask_for_pass(stack, company.ada.slack_id)
    card = await wait_card(slack, "Waiting for approval")
    await settle(stack)

    app_clock.advance(timedelta(minutes=stack.settings.request_ttl_minutes, seconds=1))

    card = await wait_card(slack, "Status*\nExpired", timeout=3.0)
    assert Action.TAP_APPROVE not in action_ids(card.blocks)
    dm = await wait_dm(slack, company.ada.slack_id, "wasn't completed in time")
    assert Action.TAP_ASK_AGAIN in action_ids(dm.blocks)
    [expired] = [e for e in await audit(stack, "tap.request.expired")]
    assert expired.details["stage"] == "decision"
    assert tap_posts(stack.graph) == []


async def test_approval_runs_out_unrevealed(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack = stack.slack
    await ask_for_pass(stack, company.ada.slack_id)
    question = await wait_dm(slack, company.grace.slack_id, "Did you expect")
    await slack.click(company.grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")
    await approve(slack, company.sam.slack_id, card)
    ready = await wait_dm(slack, company.ada.slack_id, "ready")
    await settle(stack)

    app_clock.advance(timedelta(minutes=stack.settings.approval_validity_minutes, seconds=1))

    await wait_dm(slack, company.ada.slack_id, "wasn't completed in time", timeout=3.0)
    view = await reveal(slack, company.ada.slack_id, ready, stale=True)
    assert pass_value(view) is None
    assert "no pass to show" in view_text(view)
    assert [e.details["stage"] for e in await audit(stack, "tap.request.expired")] == ["approval"]
    assert tap_posts(stack.graph) == []


async def test_pass_expiry_deletes_the_pass_and_updates_the_dm(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, graph = stack.slack, stack.graph
    await issued_pass(stack, company)
    [tap] = graph.tenant.taps_of(company.ada.entra_id)
    await settle(stack)

    app_clock.advance(timedelta(minutes=tap.lifetime_minutes, seconds=5))

    dm = await wait_dm(slack, company.ada.slack_id, "Your pass ran out", timeout=3.0)
    assert Action.TAP_ASK_AGAIN in action_ids(dm.blocks)
    assert Action.TAP_REVEAL not in action_ids(dm.blocks)
    assert [r.path.rsplit("/", 1)[1] for r in tap_deletes(graph, company.ada.entra_id)] == [tap.id]
    assert tap.deleted
    await wait_channel(slack, "pass expired before a key was registered")
    [row] = await audit(stack, "tap.pass.expired")
    assert row.details["tap_id"] == tap.id


async def test_helpdesk_opens_a_request_the_person_confirms(stack: Stack, company: Company) -> None:
    slack = stack.slack
    await slack.slash(company.sam.slack_id, "/keydesk", f"tap <@{company.ada.slack_id}>", HELPDESK_CHANNEL)
    prompt = await wait_dm(slack, company.ada.slack_id, "Did you ask for this?")
    assert {Action.TAP_TARGET_CONFIRM, Action.TAP_TARGET_DECLINE} == action_ids(prompt.blocks)
    await eventually(
        lambda: [m for m in slack.ephemerals(HELPDESK_CHANNEL, company.sam.slack_id) if "confirm" in m.text],
        "Sam's ephemeral confirmation",
    )

    await slack.click(company.ada.slack_id, Action.TAP_TARGET_CONFIRM, message=prompt)

    card = await wait_card(slack, "(helpdesk) for")
    assert f"<@{company.sam.slack_id}> (helpdesk) for <@{company.ada.slack_id}>" in message_text(card)
    dm = await wait_dm(slack, company.ada.slack_id, "with the helpdesk")
    assert dm.ts == prompt.ts
    await wait_dm(slack, company.grace.slack_id, "Did you expect Ada Lovelace")
    await settle(stack)
    assert await audit_actions(stack) == [
        "tap.request.opened_for_user",
        "tap.request.created",
        "tap.manager.asked",
    ]


async def test_reveal_again_replaces_the_pass(stack: Stack, company: Company) -> None:
    slack, graph = stack.slack, stack.graph
    first = await issued_pass(stack, company)
    dm = await wait_dm(slack, company.ada.slack_id, "You revealed it 1×")

    view = await reveal(slack, company.ada.slack_id, dm)

    second = pass_value(view)
    old, new = graph.tenant.taps_of(company.ada.entra_id)
    assert (old.value, new.value) == (first, second)
    assert old.deleted and not new.deleted
    await wait_dm(slack, company.ada.slack_id, "You revealed it 2×")
    assert [e.details["reveal"] for e in await audit(stack, "tap.issued")] == [1, 2]
