"""The admin process for privileged accounts (security.md IDV-4, abuse cases 15 and 16), end to end.

Off by default: privileged accounts are refused. With KEYDESK_ALLOW_PRIVILEGED_TARGETS on, a request for an
account with a directory role needs approvals from two different members of the separate privileged-approvers
group (KEYDESK_PRIVILEGED_APPROVER_GROUP_ID), then a cooling-off delay from the second approval before the pass
can be revealed; a Deny by any approver stops it at any point before the reveal.
Break-glass (excluded group) members stay refused either way. Lin is the seeded Global Administrator.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from bot.audit import AuditEntry
from bot.sandbox.company import BREAK_GLASS_GROUP, Company, Person
from bot.sandbox.graph_sim import RecordedRequest
from bot.sandbox.slack_sim import SimMessage
from bot.sandbox.stack import APPROVERS_GROUP, HELPDESK_CHANNEL, PRIVILEGED_APPROVERS_GROUP, Stack
from bot.slack.ids import Action, ViewId

from .helpers import (
    SECURITY_ALERT,
    ShiftableClock,
    action_ids,
    add_new_hire,
    approve,
    ask_for_pass,
    audit,
    audit_actions,
    current,
    deny,
    find_card,
    message_text,
    open_modal,
    pass_value,
    reveal,
    settle,
    submit_approval,
    tap_posts,
    view_text,
    wait_audit,
    wait_card,
    wait_channel,
    wait_dm,
)

ADMIN_PROCESS = pytest.mark.keydesk_settings(allow_privileged_targets=True)
COOLING_OFF = 60  # the default KEYDESK_PRIVILEGED_COOLING_OFF_MINUTES


async def refusal(stack: Stack, action: str, reason: str) -> AuditEntry:
    row = await wait_audit(stack, action)
    assert row.outcome == "refused", row
    assert row.details["reason"] == reason, row.details
    return row


async def request_rows(stack: Stack) -> list[tuple[str, int]]:
    from sqlalchemy import select

    from bot.store.models.tap_requests import TapRequest

    async with stack.keydesk.rt.db.session() as session:
        rows = await session.execute(
            select(TapRequest.state, TapRequest.approvals_needed).order_by(TapRequest.created_at)
        )
        return [(state, needed) for state, needed in rows.all()]


def creations(stack: Stack) -> list[RecordedRequest]:
    return tap_posts(stack.graph)


def add_approver(
    stack: Stack, slack_id: str, handle: str, name: str, groups: tuple[str, ...] = (APPROVERS_GROUP,)
) -> Person:
    """A third approver (of the ordinary approvers group unless told otherwise), in the helpdesk channel."""
    person = add_new_hire(stack, slack_id, handle, name, None)
    for group in groups:
        stack.graph.tenant.add_member(group, person.entra_id)
    stack.slack.channel(HELPDESK_CHANNEL).members.add(person.slack_id)
    return person


def slack_time(when: datetime) -> str:
    """The fallback text of a Slack date token (bot/slack/tap_views.ts)."""
    return f"{when:%Y-%m-%d %H:%M} UTC"


async def privileged_card(stack: Stack, company: Company) -> SimMessage:
    """Lin (Global Administrator, no manager) asks for a pass; returns the card of the admin process."""
    await ask_for_pass(stack, company.lin.slack_id)
    return await wait_card(stack.slack, "Privileged account: admin process")


async def twice_approved(stack: Stack, company: Company) -> SimMessage:
    """Sam gives approval 1, Alex approval 2; returns the card."""
    slack = stack.slack
    card = await privileged_card(stack, company)
    assert "Approval 1 of 2 recorded" in await approve(slack, company.sam.slack_id, card, "in_person")
    card = await wait_card(slack, "1 of 2 approvals")
    outcome = await approve(slack, company.alex.slack_id, card, "video_call_photo_id")
    assert "Approval 2 of 2 recorded: approved" in outcome, outcome
    return await wait_card(slack, f"*Approved* by <@{company.alex.slack_id}>")


# --- off by default ------------------------------------------------------------------------------
async def test_privileged_account_is_refused_by_default(stack: Stack, company: Company) -> None:
    assert stack.settings.allow_privileged_targets is False

    await ask_for_pass(stack, company.lin.slack_id)

    await wait_dm(stack.slack, company.lin.slack_id, "administrator rights")
    row = await refusal(stack, "tap.request.refused", "not_privileged")
    assert any("Global Administrator" in str(c["evidence"]) for c in row.details["checks"])
    await wait_channel(stack.slack, SECURITY_ALERT)
    assert find_card(stack.slack) is None
    assert await request_rows(stack) == []
    assert creations(stack) == []


# --- one approval is not enough ------------------------------------------------------------------
@ADMIN_PROCESS
async def test_one_approval_is_not_enough(stack: Stack, company: Company) -> None:
    slack, lin, sam = stack.slack, company.lin, company.sam

    card = await privileged_card(stack, company)

    alert = await wait_channel(slack, "has a *privileged account*")
    assert SECURITY_ALERT in message_text(alert)
    assert "two different privileged approvers" in message_text(alert)
    assert "Global Administrator" in message_text(alert)
    created = await wait_audit(stack, "tap.request.created")
    assert created.details["approvals_needed"] == 2
    assert "0 of 2 approvals" in message_text(card)

    outcome = await approve(slack, sam.slack_id, card, "in_person", "badge and passport at the desk")

    assert "Approval 1 of 2 recorded" in outcome
    assert "*different* approver" in outcome
    card = await wait_card(slack, "1 of 2 approvals")
    text = message_text(card)
    assert f"approval 1 by <@{sam.slack_id}>" in text
    assert "badge and passport at the desk" in text
    assert f"Waiting for a second approver (not <@{sam.slack_id}>)" in text
    assert {Action.TAP_APPROVE, Action.TAP_DENY} <= action_ids(card.blocks)  # others may still approve
    first = await wait_audit(stack, "tap.request.first_approval")
    assert first.actor == f"slack:{sam.slack_id}"
    assert (first.details["approval"], first.details["verification"]) == ("1 of 2", "in_person")
    await settle(stack)
    assert await request_rows(stack) == [("awaiting_approval", 2)]
    assert await audit(stack, "tap.request.approved") == []
    dm = await wait_dm(slack, lin.slack_id, "with the helpdesk")
    assert Action.TAP_REVEAL not in action_ids(current(slack, dm).blocks)
    assert creations(stack) == []


@ADMIN_PROCESS
async def test_the_same_approver_twice_is_refused(stack: Stack, company: Company) -> None:
    slack, sam = stack.slack, company.sam
    card = await privileged_card(stack, company)
    assert "Approval 1 of 2 recorded" in await approve(slack, sam.slack_id, card, "in_person")
    card = await wait_card(slack, "1 of 2 approvals")

    outcome = await approve(slack, sam.slack_id, card, "in_person")

    assert ":no_entry:" in outcome
    assert "You already gave approval 1 of 2" in outcome
    assert "*different* approver" in outcome
    row = await refusal(stack, "tap.approve.refused", "same_approver")
    assert row.actor == f"slack:{sam.slack_id}"
    assert await request_rows(stack) == [("awaiting_approval", 2)]
    assert await audit(stack, "tap.request.approved") == []
    assert creations(stack) == []
    # A different approver completes it.
    assert "Approval 2 of 2" in await approve(slack, company.alex.slack_id, current(slack, card), "in_person")


@ADMIN_PROCESS
async def test_a_double_submit_by_one_approver_is_one_approval(stack: Stack, company: Company) -> None:
    slack, sam = stack.slack, company.sam
    card = await privileged_card(stack, company)
    modal = await open_modal(slack, sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    values = {"verification": {"method": "in_person"}}

    await asyncio.gather(
        slack.submit_view(sam.slack_id, modal.id, values),
        slack.submit_view(sam.slack_id, modal.id, values, forge=True),
    )

    await refusal(stack, "tap.approve.refused", "same_approver")
    await settle(stack)
    assert len(await audit(stack, "tap.request.first_approval")) == 1
    assert await audit(stack, "tap.request.approved") == []
    assert await request_rows(stack) == [("awaiting_approval", 2)]


# --- the separate privileged-approvers group (IDV-4) --------------------------------------------------
@ADMIN_PROCESS
async def test_a_helpdesk_approver_outside_the_privileged_group_cannot_approve(
    stack: Stack, company: Company
) -> None:
    slack = stack.slack
    riley = add_approver(stack, "U0RILEY", "riley", "Riley Helpdesk")  # approvers group only
    card = await privileged_card(stack, company)

    outcome = await approve(slack, riley.slack_id, card, "in_person")

    assert "only members of the privileged-approvers group in Entra can approve it" in outcome
    row = await refusal(stack, "tap.approve.refused", "not_authorised")
    assert row.actor == f"slack:{riley.slack_id}"
    await settle(stack)
    assert await audit(stack, "tap.request.first_approval") == []
    assert await request_rows(stack) == [("awaiting_approval", 2)]
    assert "0 of 2 approvals" in message_text(current(slack, card))
    assert creations(stack) == []


@ADMIN_PROCESS
async def test_privileged_approvers_need_not_be_helpdesk_approvers(stack: Stack, company: Company) -> None:
    slack = stack.slack
    kim = add_approver(stack, "U0KIM", "kim", "Kim Security", groups=(PRIVILEGED_APPROVERS_GROUP,))
    card = await privileged_card(stack, company)
    assert "Approval 1 of 2 recorded" in await approve(slack, kim.slack_id, card, "in_person")
    card = await wait_card(slack, "1 of 2 approvals")

    assert "Approval 2 of 2 recorded: approved" in await approve(
        slack, company.sam.slack_id, card, "video_call_photo_id"
    )
    approved = await wait_audit(stack, "tap.request.approved")
    assert approved.details["first_approver"] == kim.slack_id
    # Their right stops at privileged accounts: an ordinary request is not theirs to approve.
    await ask_for_pass(stack, company.ada.slack_id)
    ordinary = await wait_card(slack, "Ada")
    outcome = await approve(slack, kim.slack_id, ordinary, "in_person")
    assert "Only members of the approvers group in Entra can decide pass requests" in outcome


@ADMIN_PROCESS
async def test_any_approver_can_stop_a_privileged_request(stack: Stack, company: Company) -> None:
    slack = stack.slack
    riley = add_approver(stack, "U0RILEY", "riley", "Riley Helpdesk")  # approvers group only
    card = await privileged_card(stack, company)
    assert "Approval 1 of 2" in await approve(slack, company.sam.slack_id, card, "in_person")
    card = await wait_card(slack, "1 of 2 approvals")

    assert "Denied" in await deny(slack, riley.slack_id, card, "nobody expected this")

    denied = await wait_audit(stack, "tap.request.denied")
    assert denied.actor == f"slack:{riley.slack_id}"
    assert await request_rows(stack) == [("denied", 2)]
    assert creations(stack) == []


@pytest.mark.keydesk_settings(allow_privileged_targets=True, privileged_approver_group_id=None)
async def test_without_a_privileged_group_nobody_can_approve_a_privileged_account(
    stack: Stack, company: Company
) -> None:
    card = await privileged_card(stack, company)

    outcome = await approve(stack.slack, company.sam.slack_id, card, "in_person")

    assert "KEYDESK_PRIVILEGED_APPROVER_GROUP_ID" in outcome
    await refusal(stack, "tap.approve.refused", "not_authorised")
    assert await audit(stack, "tap.request.first_approval") == []
    assert creations(stack) == []


# --- two approvers, the cooling-off, then the pass ----------------------------------------------
@ADMIN_PROCESS
async def test_two_approvers_then_cooling_off_then_reveal(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, graph, lin, sam, alex = stack.slack, stack.graph, company.lin, company.sam, company.alex
    graph.clock = graph.tenant.clock = app_clock  # Entra lives in the same (advanced) time as keydesk

    card = await twice_approved(stack, company)

    approved = await wait_audit(stack, "tap.request.approved")
    assert approved.actor == f"slack:{alex.slack_id}"
    assert approved.details["first_approver"] == sam.slack_id
    assert (approved.details["approval"], approved.details["cooling_off_minutes"]) == ("2 of 2", COOLING_OFF)
    not_before = datetime.fromisoformat(approved.details["reveal_not_before"])
    text = message_text(card)
    assert "2 of 2 approvals" in text
    assert f"approval 1 by <@{sam.slack_id}>" in text
    assert "Cooling-off: the person can reveal the pass from" in text
    assert slack_time(not_before) in text
    assert Action.TAP_APPROVE not in action_ids(card.blocks)
    assert Action.TAP_DENY in action_ids(card.blocks)  # "Stop: deny…" until the pass is revealed
    notice = await wait_dm(slack, lin.slack_id, "Two approvers approved your pass request")
    assert slack_time(not_before) in message_text(notice)
    await wait_audit(stack, "tap.cooling_off.started")
    dm = await wait_dm(slack, lin.slack_id, "Your Temporary Access Pass is ready")
    assert "cooling-off" in message_text(dm)

    early = await reveal(slack, lin.slack_id, dm)

    assert "Not yet" in view_text(early)
    assert "cooling-off" in view_text(early)
    assert slack_time(not_before) in view_text(early)
    assert pass_value(early) is None
    refused = await wait_audit(stack, "tap.reveal.refused")
    assert refused.outcome == "refused" and "cooling-off" in refused.details["reason"]
    assert creations(stack) == []

    await settle(stack)
    app_clock.advance(timedelta(minutes=COOLING_OFF, seconds=1))
    ready = await wait_dm(slack, lin.slack_id, "Your pass can be revealed now", timeout=4.0)
    assert Action.TAP_REVEAL in action_ids(ready.blocks)
    await wait_audit(stack, "tap.cooling_off.ended")
    await wait_card(slack, "Cooling-off over since")

    view = await reveal(slack, lin.slack_id, ready)

    [tap] = graph.tenant.taps_of(lin.entra_id)
    assert pass_value(view) == tap.value
    await wait_card(slack, "Pass issued")
    await settle(stack)
    assert await audit_actions(stack) == [
        "tap.request.created",
        "tap.request.first_approval",
        "tap.request.approved",
        "tap.cooling_off.started",
        "tap.reveal.refused",
        "tap.cooling_off.ended",
        "tap.issue.started",
        "tap.issued",
        "tap.notified",
    ]
    assert (await stack.keydesk.rt.audit.verify()).ok


@ADMIN_PROCESS
async def test_racing_second_approvals_make_exactly_one_decision(stack: Stack, company: Company) -> None:
    slack = stack.slack
    bea = add_approver(
        stack, "U0BEA", "bea", "Bea Santos", groups=(APPROVERS_GROUP, PRIVILEGED_APPROVERS_GROUP)
    )
    card = await privileged_card(stack, company)
    assert "Approval 1 of 2" in await approve(slack, company.sam.slack_id, card, "in_person")
    card = await wait_card(slack, "1 of 2 approvals")
    alex_modal = await open_modal(slack, company.alex.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    bea_modal = await open_modal(slack, bea.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)

    outcomes = await asyncio.gather(
        submit_approval(slack, company.alex.slack_id, alex_modal, "in_person"),
        submit_approval(slack, bea.slack_id, bea_modal, "in_person"),
    )

    winners = [o for o in outcomes if ":white_check_mark:" in o]
    losers = [o for o in outcomes if ":no_entry:" in o]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    assert "Approval 2 of 2" in winners[0]
    [row] = await audit(stack, "tap.request.approved")
    assert f"it was approved by <@{row.actor.removeprefix('slack:')}>" in losers[0]
    await refusal(stack, "tap.approve.refused", "lost_race")
    await settle(stack)
    assert await request_rows(stack) == [("approved", 2)]
    assert len(await audit(stack, "tap.cooling_off.started")) == 1
    assert creations(stack) == []


@ADMIN_PROCESS
async def test_two_first_approvals_at_once_count_as_one_each(stack: Stack, company: Company) -> None:
    slack, sam, alex = stack.slack, company.sam, company.alex
    card = await privileged_card(stack, company)
    sam_modal = await open_modal(slack, sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    alex_modal = await open_modal(slack, alex.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)

    outcomes = await asyncio.gather(
        submit_approval(slack, sam.slack_id, sam_modal, "in_person"),
        submit_approval(slack, alex.slack_id, alex_modal, "in_person"),
    )

    # Both verified the person: one recorded approval 1, the other approval 2.
    assert sorted("2 of 2" in o for o in outcomes) == [False, True], outcomes
    [first] = await audit(stack, "tap.request.first_approval")
    [second] = await audit(stack, "tap.request.approved")
    assert {first.actor, second.actor} == {f"slack:{sam.slack_id}", f"slack:{alex.slack_id}"}
    await settle(stack)
    assert await request_rows(stack) == [("approved", 2)]


# --- stopping it ---------------------------------------------------------------------------------
@ADMIN_PROCESS
async def test_a_deny_after_the_first_approval_ends_it(stack: Stack, company: Company) -> None:
    slack = stack.slack
    card = await privileged_card(stack, company)
    assert "Approval 1 of 2" in await approve(slack, company.sam.slack_id, card, "in_person")
    card = await wait_card(slack, "1 of 2 approvals")

    assert "Denied" in await deny(slack, company.alex.slack_id, card, "Lin is on leave; nobody expected this")

    card = await wait_card(slack, f"*Denied* by <@{company.alex.slack_id}>")
    assert f"approval 1 by <@{company.sam.slack_id}>" in message_text(card)
    assert Action.TAP_APPROVE not in action_ids(card.blocks)
    await wait_dm(slack, company.lin.slack_id, "wasn't approved")
    denied = await wait_audit(stack, "tap.request.denied")
    assert denied.details["was"] == "awaiting_approval"
    assert await request_rows(stack) == [("denied", 2)]
    assert creations(stack) == []


@ADMIN_PROCESS
async def test_a_deny_during_the_cooling_off_stops_it(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, lin = stack.slack, company.lin
    card = await twice_approved(stack, company)
    dm = await wait_dm(slack, lin.slack_id, "Your Temporary Access Pass is ready")
    snapshot = current(slack, dm)

    outcome = await deny(slack, company.sam.slack_id, card, "Lin called: she never asked for this")

    assert "Denied" in outcome
    card = await wait_card(slack, f"*Denied* by <@{company.sam.slack_id}>")
    text = message_text(card)
    assert "2 of 2 approvals" in text
    assert f"Approval 2 by <@{company.alex.slack_id}>; then stopped" in text
    assert Action.TAP_DENY not in action_ids(card.blocks)
    denied = await wait_audit(stack, "tap.request.denied")
    assert denied.details["was"] == "approved"
    await wait_dm(slack, lin.slack_id, "wasn't approved")

    view = await reveal(slack, lin.slack_id, snapshot, stale=True)
    assert "This request is denied" in view_text(view)
    await settle(stack)
    app_clock.advance(timedelta(minutes=COOLING_OFF, seconds=1))
    await stack.keydesk.rt.deadlines.pump_once()  # whatever is due runs now: the cooling-off was cancelled
    await settle(stack)
    assert "Your pass can be revealed now" not in "\n".join(
        message_text(m) for m in slack.dm_messages(lin.slack_id)
    )
    assert await audit(stack, "tap.cooling_off.ended") == []
    assert await request_rows(stack) == [("denied", 2)]
    assert creations(stack) == []


# --- break-glass stays refused -------------------------------------------------------------------
@pytest.mark.keydesk_settings(allow_privileged_targets=True, excluded_group_ids=(BREAK_GLASS_GROUP,))
@pytest.mark.parametrize("who", ["lin", "ada"])
async def test_break_glass_members_stay_refused_with_the_admin_process_on(
    stack: Stack, company: Company, who: str
) -> None:
    person = company.lin if who == "lin" else company.ada
    stack.graph.tenant.add_member(BREAK_GLASS_GROUP, person.entra_id)

    await ask_for_pass(stack, person.slack_id)

    await wait_dm(stack.slack, person.slack_id, "administrator rights")
    row = await refusal(stack, "tap.request.refused", "not_privileged")
    [check] = [c for c in row.details["checks"] if c["name"] == "not_privileged"]
    assert check["passed"] is False
    assert f"excluded group {BREAK_GLASS_GROUP}" in check["evidence"]
    await wait_channel(stack.slack, SECURITY_ALERT)
    assert find_card(stack.slack) is None
    assert await request_rows(stack) == []
    assert creations(stack) == []
