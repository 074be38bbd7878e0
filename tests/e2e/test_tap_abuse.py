"""Abuse cases from security.md §3 against the running app, driven only through signed Slack requests.

Each test asserts the refusal, what the person read, the audit row, and that Graph received no request
to create a Temporary Access Pass.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.audit import AuditEntry
from bot.sandbox.company import BREAK_GLASS_GROUP, GLOBAL_ADMIN_ROLE, HELPDESK_ADMIN_ROLE, Company
from bot.sandbox.graph_sim import Fault, MethodKind
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.slack.ids import Action, ViewId

from .helpers import (
    SECURITY_ALERT,
    TAP_COLLECTION,
    ShiftableClock,
    action_ids,
    add_new_hire,
    approve,
    approved_dm,
    ask_for_pass,
    audit,
    channel_messages,
    confirmed_card,
    current,
    deny,
    eventually,
    find_card,
    message_text,
    open_modal,
    pass_value,
    reveal,
    revealed,
    settle,
    stale_click,
    submit_approval,
    tap_deletes,
    tap_posts,
    view_text,
    wait_audit,
    wait_card,
    wait_channel,
    wait_dm,
)


async def refusal(stack: Stack, action: str, reason: str) -> AuditEntry:
    row = await wait_audit(stack, action)
    assert row.outcome == "refused", row
    assert row.details["reason"] == reason, row.details
    return row


async def request_states(stack: Stack) -> list[str]:
    from sqlalchemy import select

    from bot.store.models.tap_requests import TapRequest

    async with stack.keydesk.rt.db.session() as session:
        return list(
            (await session.execute(select(TapRequest.state).order_by(TapRequest.created_at))).scalars()
        )


def no_pass_created(stack: Stack) -> None:
    assert tap_posts(stack.graph) == []
    assert all(not taps for taps in (stack.graph.tenant.taps_of(u) for u in stack.graph.tenant.users))


# --- 7, 8, 9: who may approve ---------------------------------------------------------------------
async def test_7_helpdesk_opener_cannot_approve_the_request_they_opened(
    stack: Stack, company: Company
) -> None:
    slack = stack.slack
    sam, alex, ada = company.sam, company.alex, company.ada
    await slack.slash(sam.slack_id, "/keydesk", f"tap <@{ada.slack_id}>", HELPDESK_CHANNEL)
    prompt = await wait_dm(slack, ada.slack_id, "Did you ask for this?")
    await slack.click(ada.slack_id, Action.TAP_TARGET_CONFIRM, message=prompt)
    question = await wait_dm(slack, company.grace.slack_id, "Did you expect")
    await slack.click(company.grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")

    outcome = await approve(slack, sam.slack_id, card)

    assert "You can't approve a request you opened or one for yourself" in outcome
    await refusal(stack, "tap.approve.refused", "not_authorised")
    assert await request_states(stack) == ["awaiting_approval"]
    no_pass_created(stack)
    # Another approver still can: the refusal was about Sam, not the request.
    assert ":white_check_mark:" in await approve(slack, alex.slack_id, current(slack, card))


async def test_8_approver_cannot_approve_a_pass_for_their_own_account(stack: Stack, company: Company) -> None:
    slack, graph = stack.slack, stack.graph
    sam, alex = company.sam, company.alex
    [key] = [m for m in graph.tenant.methods_of(sam.entra_id) if m.kind == MethodKind.FIDO2]
    graph.tenant.delete_method(sam.entra_id, MethodKind.FIDO2, key.id)  # Sam lost his key
    await slack.slash(alex.slack_id, "/keydesk", f"tap <@{sam.slack_id}>", HELPDESK_CHANNEL)
    prompt = await wait_dm(slack, sam.slack_id, "Did you ask for this?")
    await slack.click(sam.slack_id, Action.TAP_TARGET_CONFIRM, message=prompt)
    card = await wait_card(slack, "Waiting for approval")

    outcome = await approve(slack, sam.slack_id, card, "in_person")

    assert "You can't approve a request you opened or one for yourself" in outcome
    await refusal(stack, "tap.approve.refused", "not_authorised")
    assert await request_states(stack) == ["awaiting_approval"]
    no_pass_created(stack)


async def test_9_non_approver_and_slack_admin_cannot_decide(stack: Stack, company: Company) -> None:
    slack = stack.slack
    morgan = company.morgan
    slack.user(morgan.slack_id).is_admin = True  # Slack admin rights give no authority
    slack.channel(HELPDESK_CHANNEL).members.add(morgan.slack_id)
    card = await confirmed_card(stack, company)

    outcome = await approve(slack, morgan.slack_id, card)

    assert "Only members of the approvers group in Entra can decide" in outcome
    await refusal(stack, "tap.approve.refused", "not_authorised")
    denial = await deny(slack, morgan.slack_id, current(slack, card), "looks odd")
    assert "Only members of the approvers group" in denial
    await refusal(stack, "tap.deny.refused", "not_authorised")
    assert await request_states(stack) == ["awaiting_approval"]
    assert "Waiting for approval" in message_text(current(slack, card))
    no_pass_created(stack)


async def test_approver_must_map_to_their_own_entra_account(stack: Stack, company: Company) -> None:
    slack = stack.slack
    slack.user(company.alex.slack_id).email = "alex.kim@elsewhere.example"  # no Entra account has it
    card = await confirmed_card(stack, company)

    outcome = await approve(slack, company.alex.slack_id, card)

    assert "I couldn't map you to your own work account" in outcome
    await refusal(stack, "tap.approve.refused", "not_authorised")
    assert await request_states(stack) == ["awaiting_approval"]
    no_pass_created(stack)


# --- 11, 17 and friends: who may ask ------------------------------------------------------------
GENERIC = "Sorry, I can only help full members of this workspace."


@pytest.mark.parametrize("who", ["U0PAT", "U0OUTSIDE"], ids=["slack_guest", "slack_external"])
async def test_11_guest_or_external_user_is_refused_generically(stack: Stack, who: str) -> None:
    await ask_for_pass(stack, who)

    dm = await wait_dm(stack.slack, who, GENERIC)
    assert "administrator" not in message_text(dm)
    row = await wait_audit(stack, "tap.request.refused")
    assert row.outcome == "refused"
    assert row.details["reason"] in ("not_full_member", "foreign")
    assert stack.graph.requests == []  # refused before anyone looked in the directory
    assert find_card(stack.slack) is None


async def test_11_single_channel_guest_is_refused(stack: Stack) -> None:
    stack.slack.add_user("U0SCG", "scg", real_name="Single Guest", email="scg@northwind.example")
    stack.slack.user("U0SCG").is_ultra_restricted = True
    await ask_for_pass(stack, "U0SCG")
    await wait_dm(stack.slack, "U0SCG", GENERIC)
    await refusal(stack, "tap.request.refused", "not_full_member")
    assert stack.graph.requests == []


@pytest.mark.parametrize(
    ("change", "reason", "says"),
    [
        ("disabled", "account_disabled", "Your work account is disabled"),
        ("entra_guest", "entra_guest", "Your work account is a guest account"),
        ("deleted_in_entra", "no_entra_account", "couldn't find a work account"),
        ("deactivated_in_slack", "deactivated", None),  # Slack refuses DMs to deactivated users
    ],
)
async def test_17_disabled_guest_or_missing_accounts_are_refused(
    stack: Stack, company: Company, change: str, reason: str, says: str | None
) -> None:
    ada = company.ada
    user = stack.graph.tenant.users[ada.entra_id]
    if change == "disabled":
        user.account_enabled = False
    elif change == "entra_guest":
        user.user_type = "Guest"
    elif change == "deleted_in_entra":
        del stack.graph.tenant.users[ada.entra_id]
    else:
        stack.slack.user(ada.slack_id).deleted = True

    await ask_for_pass(stack, ada.slack_id)

    if says is not None:
        await wait_dm(stack.slack, ada.slack_id, says)
    await refusal(stack, "tap.request.refused", reason)
    assert find_card(stack.slack) is None
    no_pass_created(stack)


# --- 15, 16: privileged targets -----------------------------------------------------------------
async def test_15_global_admin_is_refused_and_the_helpdesk_alerted(stack: Stack, company: Company) -> None:
    await ask_for_pass(stack, company.lin.slack_id)

    await wait_dm(stack.slack, company.lin.slack_id, "administrator rights")
    row = await refusal(stack, "tap.request.refused", "not_privileged")
    assert any("Global Administrator" in str(c["evidence"]) for c in row.details["checks"])
    alert = await wait_channel(stack.slack, SECURITY_ALERT)
    assert f"<@{company.lin.slack_id}>" in message_text(alert)
    assert find_card(stack.slack) is None
    no_pass_created(stack)


@pytest.mark.keydesk_settings(excluded_group_ids=(BREAK_GLASS_GROUP,))
@pytest.mark.parametrize("how", ["pim_eligible", "role_assignable_group", "break_glass_group"])
async def test_16_privileged_or_excluded_targets_are_refused(
    stack: Stack, company: Company, how: str
) -> None:
    tenant, ada = stack.graph.tenant, company.ada
    if how == "pim_eligible":
        tenant.assign_role(ada.entra_id, HELPDESK_ADMIN_ROLE, eligible=True)
    elif how == "role_assignable_group":
        group = tenant.add_group("Tier 0 admins", role_assignable=True, members=[ada.entra_id])
        tenant.assign_role(group.id, GLOBAL_ADMIN_ROLE)
    else:
        tenant.add_member(BREAK_GLASS_GROUP, ada.entra_id)

    await ask_for_pass(stack, ada.slack_id)

    await wait_dm(stack.slack, ada.slack_id, "administrator rights")
    await refusal(stack, "tap.request.refused", "not_privileged")
    await wait_channel(stack.slack, SECURITY_ALERT)
    no_pass_created(stack)


# --- 18, 22, 23: the target's state and history --------------------------------------------------
async def test_18_person_with_a_passkey_gets_self_service_guidance(stack: Stack, company: Company) -> None:
    await ask_for_pass(stack, company.morgan.slack_id)

    dm = await wait_dm(stack.slack, company.morgan.slack_id, "phishing-resistant sign-in method")
    assert "Add sign-in method" in message_text(dm)
    assert "/lostkey" in message_text(dm)
    await refusal(stack, "tap.request.refused", "no_strong_method")
    assert find_card(stack.slack) is None
    no_pass_created(stack)


async def test_22_existing_valid_pass_is_never_silently_replaced(stack: Stack, company: Company) -> None:
    existing = stack.graph.tenant.issue_tap(company.ada.entra_id)  # e.g. made by an admin in the portal

    await ask_for_pass(stack, company.ada.slack_id)

    await wait_dm(stack.slack, company.ada.slack_id, "You already have a valid Temporary Access Pass")
    await refusal(stack, "tap.request.refused", "no_valid_pass")
    assert tap_posts(stack.graph) == []
    assert stack.graph.tenant.taps_of(company.ada.entra_id) == [existing]
    assert not existing.deleted


async def test_22_asking_again_while_a_request_is_open_shows_it(stack: Stack, company: Company) -> None:
    dm = await approved_dm(stack, company)

    await ask_for_pass(stack, company.ada.slack_id, "I need a pass")

    await wait_dm(stack.slack, company.ada.slack_id, "You already have a request in progress")
    await settle(stack)
    assert await request_states(stack) == ["approved"]
    assert len([m for m in channel_messages(stack.slack) if m.text.startswith("Temporary Access")]) == 1
    assert Action.TAP_REVEAL in action_ids(current(stack.slack, dm).blocks)
    no_pass_created(stack)


async def test_23_fourth_request_in_a_day_is_rate_limited_and_alerted(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    for attempt in range(3):
        await ask_for_pass(stack, ada.slack_id)
        card = await wait_card(slack, "Waiting for approval")
        await deny(slack, company.sam.slack_id, card, f"could not reach her on video ({attempt})")
        await wait_dm(slack, ada.slack_id, "wasn't approved")
        await settle(stack)

    await ask_for_pass(stack, ada.slack_id)

    await wait_dm(slack, ada.slack_id, "paused new requests for 24 hours")
    row = await refusal(stack, "tap.request.refused", "rate_limit")
    assert row.target == f"entra:{ada.entra_id}"
    await wait_channel(slack, "3 requests in the last 24 h")
    assert await request_states(stack) == ["denied"] * 3
    no_pass_created(stack)


# --- 24: limits on approvers and the tenant ------------------------------------------------------
@pytest.mark.keydesk_settings(max_approvals_per_approver_per_hour=1)
async def test_24_approver_over_the_hourly_cap_is_throttled_and_alerted(
    stack: Stack, company: Company
) -> None:
    slack = stack.slack
    await approved_dm(stack, company)
    bob = add_new_hire(stack, "U0BOB", "bob", "Bob Byte", company.grace)
    card = await confirmed_card(stack, company, bob)

    outcome = await approve(slack, company.sam.slack_id, card)

    assert "the most allowed. Ask another approver." in outcome
    await refusal(stack, "tap.approve.refused", "limit")
    alert = await wait_channel(slack, "reached the limit")
    assert SECURITY_ALERT in message_text(alert)
    assert tap_posts(stack.graph) == []
    assert ":white_check_mark:" in await approve(slack, company.alex.slack_id, current(slack, card))


@pytest.mark.keydesk_settings(max_passes_per_hour=1)
async def test_24_tenant_circuit_breaker_pauses_issuance(stack: Stack, company: Company) -> None:
    slack = stack.slack
    await revealed(stack, company)
    bob = add_new_hire(stack, "U0BOB", "bob", "Bob Byte", company.grace)
    card = await confirmed_card(stack, company, bob)

    outcome = await approve(slack, company.alex.slack_id, card)

    assert "Issuance is paused" in outcome
    await refusal(stack, "tap.approve.refused", "limit")
    await wait_channel(slack, "circuit breaker")
    assert len(tap_posts(stack.graph)) == 1
    assert tap_posts(stack.graph, bob.entra_id) == []


# --- 19 and the manager policy --------------------------------------------------------------------
async def test_19_verification_older_than_15_minutes_is_refused(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    from datetime import timedelta

    slack = stack.slack
    card = await confirmed_card(stack, company)
    modal = await open_modal(slack, company.sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    app_clock.advance(timedelta(minutes=16))  # Sam "verified" then left the modal open

    outcome = await submit_approval(slack, company.sam.slack_id, modal, "video_call_photo_id")

    assert "more than 15 minutes old" in outcome
    await refusal(stack, "tap.approve.refused", "verification")
    assert await request_states(stack) == ["awaiting_approval"]
    no_pass_created(stack)


async def test_manager_confirmed_cannot_be_claimed_without_the_managers_yes(
    stack: Stack, company: Company
) -> None:
    slack = stack.slack
    await ask_for_pass(stack, company.ada.slack_id)
    card = await wait_card(slack, "asked, no answer yet")

    outcome = await approve(slack, company.sam.slack_id, card, "manager_confirmed")

    assert "The manager hasn't confirmed this request" in outcome
    await refusal(stack, "tap.approve.refused", "verification")
    assert await request_states(stack) == ["awaiting_approval"]
    no_pass_created(stack)
    # A strong check by the approver is enough without the manager.
    assert ":white_check_mark:" in await approve(
        slack, company.sam.slack_id, current(slack, card), "in_person"
    )


async def test_manager_says_it_looks_wrong_before_approval(stack: Stack, company: Company) -> None:
    slack, grace, ada = stack.slack, company.grace, company.ada
    await ask_for_pass(stack, ada.slack_id)
    snapshot = await wait_card(slack, "Waiting for approval")
    question = await wait_dm(slack, grace.slack_id, "Did you expect")

    await slack.click(grace.slack_id, Action.MANAGER_REJECT, message=question)

    await wait_dm(slack, grace.slack_id, "I cancelled the request and alerted the helpdesk")
    alert = await wait_channel(slack, "did *not* expect")
    assert SECURITY_ALERT in message_text(alert)
    await wait_dm(slack, ada.slack_id, "Your request was cancelled")
    card = await wait_card(slack, "Status*\nCancelled")
    assert Action.TAP_APPROVE not in action_ids(card.blocks)
    row = await wait_audit(stack, "tap.manager.answered")
    assert row.details["expected"] is False
    assert await request_states(stack) == ["cancelled"]
    # The old Approve button (a client that has not refreshed yet) refuses too.
    await stale_click(slack, company.sam.slack_id, snapshot, Action.TAP_APPROVE)
    [modal] = await eventually(
        lambda: [v for v in slack.open_views(company.sam.slack_id) if v.callback_id == ViewId.TAP_APPROVE],
        "Sam's approve modal",
    )
    outcome = await submit_approval(slack, company.sam.slack_id, modal, "in_person")
    assert "it was cancelled" in outcome
    await refusal(stack, "tap.approve.refused", "stale")
    no_pass_created(stack)


async def test_manager_looks_wrong_after_issuance_stops_the_pass(stack: Stack, company: Company) -> None:
    slack, graph, grace, ada = stack.slack, stack.graph, company.grace, company.ada
    await revealed(stack, company)
    [tap] = graph.tenant.taps_of(ada.entra_id)
    notice = await wait_dm(slack, grace.slack_id, "was issued to Ada Lovelace")

    await slack.click(grace.slack_id, Action.MANAGER_LOOKS_WRONG, message=notice)

    await wait_dm(slack, grace.slack_id, "the pass is deleted, their sessions are ending")
    alert = await wait_channel(slack, "flagged")
    assert SECURITY_ALERT in message_text(alert)
    assert "deleted the pass and ended their sign-in sessions" in message_text(alert)
    await wait_dm(slack, ada.slack_id, "Your pass was cancelled")
    assert tap.deleted
    assert len(tap_deletes(graph, ada.entra_id)) == 1
    assert len(graph.requests_to("POST", rf"^/users/{ada.entra_id}/revokeSignInSessions$")) == 1
    assert [r.user_id for r in graph.tenant.revocations] == [ada.entra_id]
    row = await wait_audit(stack, "tap.looks_wrong")
    assert (row.outcome, row.details["passes_deleted"], row.details["sessions_revoked"]) == ("ok", 1, True)
    assert await request_states(stack) == ["revoked"]


async def test_only_the_manager_may_press_looks_wrong(stack: Stack, company: Company) -> None:
    slack, graph = stack.slack, stack.graph
    await revealed(stack, company)
    notice = await wait_dm(slack, company.grace.slack_id, "was issued to Ada Lovelace")

    await slack.click(company.morgan.slack_id, Action.MANAGER_LOOKS_WRONG, message=notice, forge=True)

    await wait_dm(slack, company.morgan.slack_id, "Only the person's manager can use this button")
    await refusal(stack, "tap.looks_wrong.refused", "not_the_manager")
    assert graph.requests_to("POST", "revokeSignInSessions") == []
    assert tap_deletes(graph) == []
    assert await request_states(stack) == ["issued"]


# --- 20: double clicks --------------------------------------------------------------------------
async def test_20_two_approvers_at_once_make_exactly_one_decision(stack: Stack, company: Company) -> None:
    slack = stack.slack
    card = await confirmed_card(stack, company)
    sam_modal = await open_modal(slack, company.sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    alex_modal = await open_modal(slack, company.alex.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)

    outcomes = await asyncio.gather(
        submit_approval(slack, company.sam.slack_id, sam_modal),
        submit_approval(slack, company.alex.slack_id, alex_modal),
    )

    winners = [o for o in outcomes if ":white_check_mark:" in o]
    losers = [o for o in outcomes if ":no_entry:" in o]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    [row] = await audit(stack, "tap.request.approved")
    assert f"it was approved by <@{row.actor.removeprefix('slack:')}>" in losers[0]
    await refusal(stack, "tap.approve.refused", "lost_race")
    assert await request_states(stack) == ["approved"]
    assert tap_posts(stack.graph) == []


async def test_20_same_approver_double_submit_is_one_decision(stack: Stack, company: Company) -> None:
    slack, sam = stack.slack, company.sam
    card = await confirmed_card(stack, company)
    modal = await open_modal(slack, sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    values = {"verification": {"method": "manager_confirmed"}}

    await asyncio.gather(
        slack.submit_view(sam.slack_id, modal.id, values),
        slack.submit_view(sam.slack_id, modal.id, values, forge=True),
    )

    await wait_audit(stack, "tap.approve.refused")
    await settle(stack)
    assert len(await audit(stack, "tap.request.approved")) == 1
    assert await request_states(stack) == ["approved"]


async def test_20_double_click_on_reveal_leaves_one_live_pass_on_screen(
    stack: Stack, company: Company
) -> None:
    """Two clicks open two modals and the second replaces the first on screen. Whichever click wins,
    Ada ends with exactly one live pass, shown in the window she has open; any pass made for the
    window that vanished was deleted unseen."""
    slack, graph, ada = stack.slack, stack.graph, company.ada
    dm = await approved_dm(stack, company)

    await asyncio.gather(
        slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm),
        slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm),
    )
    await wait_audit(stack, "tap.issued")
    await settle(stack)

    taps = graph.tenant.taps_of(ada.entra_id)
    [live] = [t for t in taps if not t.deleted]
    [window] = slack.open_views(ada.slack_id)
    # Or, when the first modal showed its pass a moment before the second covered it, the second says so.
    assert pass_value(window) == live.value or "already showed your pass in another window" in view_text(
        window
    )
    assert len(taps) == len(tap_posts(graph, ada.entra_id)) == len(await audit(stack, "tap.issue.started"))
    assert len(taps) <= 2
    assert await request_states(stack) == ["issued"]


async def test_20_second_click_takes_over_when_the_first_window_vanished(
    stack: Stack, company: Company
) -> None:
    """The first click is still waiting on Entra when the second opens its window (replacing the first):
    the first pass can't be shown and is deleted; the second click then shows a fresh one."""
    slack, graph, ada = stack.slack, stack.graph, company.ada
    dm = await approved_dm(stack, company)
    graph.add_fault(Fault(method="POST", path=TAP_COLLECTION, status=0, latency=2.0))  # room for click 2

    first = asyncio.create_task(slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm))
    await wait_audit(stack, "tap.issue.started")
    await slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm)
    await first
    await wait_audit(stack, "tap.issued", timeout=10.0)
    await settle(stack)

    gone, live = graph.tenant.taps_of(ada.entra_id)
    assert gone.deleted and not live.deleted
    [window] = slack.open_views(ada.slack_id)
    assert pass_value(window) == live.value
    [abandoned] = await audit(stack, "tap.issue.abandoned")
    assert abandoned.details["reason"] == "modal_failed:not_found"
    assert len(await audit(stack, "tap.issue.started")) == 2
    assert await request_states(stack) == ["issued"]


# --- 25, 27: stale buttons and other people's buttons --------------------------------------------
async def test_25_stale_approve_after_a_denial_is_refused(stack: Stack, company: Company) -> None:
    slack = stack.slack
    card = await confirmed_card(stack, company)
    snapshot = current(slack, card)  # what Alex's client still shows
    assert "Denied" in await deny(slack, company.sam.slack_id, card, "no video call possible")
    await wait_dm(slack, company.ada.slack_id, "wasn't approved")

    await stale_click(slack, company.alex.slack_id, snapshot, Action.TAP_APPROVE)
    modal = await eventually(
        lambda: [v for v in slack.open_views(company.alex.slack_id) if v.callback_id == ViewId.TAP_APPROVE],
        "Alex's approve modal",
    )
    outcome = await submit_approval(slack, company.alex.slack_id, modal[-1])

    assert f"no longer waiting for a decision: it was denied by <@{company.sam.slack_id}>" in outcome
    await refusal(stack, "tap.approve.refused", "stale")
    card = await wait_card(slack, "*Denied* by")
    assert Action.TAP_APPROVE not in action_ids(card.blocks)
    assert await request_states(stack) == ["denied"]
    no_pass_created(stack)


async def test_25_stale_approve_after_expiry_is_refused(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    from datetime import timedelta

    slack = stack.slack
    card = await confirmed_card(stack, company)
    snapshot = current(slack, card)
    await settle(stack)
    app_clock.advance(timedelta(minutes=stack.settings.request_ttl_minutes, seconds=1))
    await wait_card(slack, "Status*\nExpired", timeout=3.0)

    await stale_click(slack, company.sam.slack_id, snapshot, Action.TAP_APPROVE)
    modal = await eventually(
        lambda: [v for v in slack.open_views(company.sam.slack_id) if v.callback_id == ViewId.TAP_APPROVE],
        "Sam's approve modal",
    )
    outcome = await submit_approval(slack, company.sam.slack_id, modal[-1])

    assert "no longer waiting for a decision: it was expired" in outcome
    await refusal(stack, "tap.approve.refused", "stale")
    assert await request_states(stack) == ["expired"]
    no_pass_created(stack)


async def test_27_someone_else_cannot_reveal_the_pass(stack: Stack, company: Company) -> None:
    slack, morgan = stack.slack, company.morgan
    dm = await approved_dm(stack, company)

    view = await reveal(slack, morgan.slack_id, dm, forge=True)

    assert "This pass belongs to someone else" in view_text(view)
    await refusal(
        stack, "tap.reveal.refused", "This pass belongs to someone else, so I can't show it to you."
    )
    assert await request_states(stack) == ["approved"]
    no_pass_created(stack)


# --- 28: oversized input ------------------------------------------------------------------------
async def test_28_ten_thousand_character_dm_is_handled(stack: Stack, company: Company) -> None:
    words = ("please " * 1500)[:10_000]

    delivery = await ask_for_pass(stack, company.ada.slack_id, words)

    assert delivery.status == 200
    await wait_dm(stack.slack, company.ada.slack_id, "I'm keydesk")  # not understood: the welcome
    await settle(stack)
    assert find_card(stack.slack) is None
    no_pass_created(stack)


async def test_28_ten_thousand_character_note_is_capped(stack: Stack, company: Company) -> None:
    slack = stack.slack
    card = await confirmed_card(stack, company)
    modal = await open_modal(slack, company.sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)

    outcome = await submit_approval(
        slack, company.sam.slack_id, modal, note="x" * 10_000, forge=True
    )  # Slack's client would stop at 500; a forged request does not

    assert ":white_check_mark:" in outcome
    row = await wait_audit(stack, "tap.request.approved")
    assert len(row.details["note"]) <= 500


async def test_28_one_megabyte_body_is_rejected_unparsed(stack: Stack, company: Company) -> None:
    body = b"payload=" + b"A" * (1024 * 1024)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **stack.slack.sign(body)}

    delivery = await stack.slack.deliver_raw(body, headers)

    assert delivery.status == 413
    await settle(stack)
    assert [c.method for c in stack.slack.calls] == ["auth.test"]
    assert await audit(stack) == []


# --- identity drift -----------------------------------------------------------------------------
async def test_identity_drift_is_refused_and_alerted(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    await slack.open_home(ada.slack_id)  # her first contact pins Slack U0ADA <-> her Entra account
    await wait_audit(stack, "identity.pinned")
    slack.user(ada.slack_id).email = company.lin.email  # someone edits her Slack profile email

    await ask_for_pass(stack, ada.slack_id)

    await wait_dm(slack, ada.slack_id, "no longer matches the work account")
    await refusal(stack, "tap.request.refused", "drift")
    alert = await wait_channel(slack, "identity didn't check out")
    assert SECURITY_ALERT in message_text(alert)
    assert find_card(slack) is None
    no_pass_created(stack)


async def test_email_matching_two_entra_accounts_is_refused_and_alerted(
    stack: Stack, company: Company
) -> None:
    stack.graph.tenant.add_user("Ada Lovelace (old)", "ada.old@northwind.example", mail=company.ada.email)

    await ask_for_pass(stack, company.ada.slack_id)

    await wait_dm(stack.slack, company.ada.slack_id, "matches more than one work account")
    await refusal(stack, "tap.request.refused", "ambiguous")
    await wait_channel(stack.slack, SECURITY_ALERT)
    no_pass_created(stack)


async def test_two_quick_requests_file_one(stack: Stack, company: Company) -> None:
    slack = stack.slack
    await asyncio.gather(
        ask_for_pass(stack, company.ada.slack_id), ask_for_pass(stack, company.ada.slack_id, "I need a pass")
    )

    await wait_card(slack, "Waiting for approval")
    await settle(stack)
    assert await request_states(stack) == ["awaiting_approval"]
    assert len([m for m in channel_messages(slack) if m.text.startswith("Temporary Access")]) == 1
    assert len(await audit(stack, "tap.request.created")) == 1
    assert len(await audit(stack, "identity.pinned")) == 1
