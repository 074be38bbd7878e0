"""security.md IDV-5 against the running app: a user Entra ID Protection flags is refused (vaguely, to them;
loudly, to the helpdesk), and a sign-in method added in the last 24 h makes approval need a strong
verification. Graph is the simulator: riskyUsers, its 403 without Entra ID P2, and its faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.directory import Forbidden
from bot.domain.eligibility import RISK_UNAVAILABLE
from bot.sandbox.company import Company
from bot.sandbox.graph_sim import Fault
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.services.onboarding import DIRECTORY_DOWN
from bot.slack.ids import Action

from .helpers import (
    SECURITY_ALERT,
    ShiftableClock,
    add_new_hire,
    approve,
    approved_dm,
    ask_for_pass,
    audit,
    bot_dms,
    channel_messages,
    confirmed_card,
    current,
    find_card,
    message_text,
    pass_value,
    reveal,
    revealed,
    settle,
    tap_posts,
    view_text,
    wait_audit,
    wait_card,
    wait_channel,
    wait_dm,
)
from .test_desk_provisioning import KEY_FILE, SEAL_FILE, ask, desk

VAGUE = "I can't start this from Slack right now; please contact the helpdesk: the IT helpdesk."
RISKY_USERS = r"^/identityProtection/riskyUsers/"


def risk_reads(stack: Stack) -> list[int]:
    """The statuses Graph answered keydesk's riskyUsers reads with."""
    return [r.status for r in stack.graph.requests_to("GET", RISKY_USERS)]


async def request_rows(stack: Stack) -> list[str]:
    from sqlalchemy import select

    from bot.store.models.tap_requests import TapRequest

    async with stack.keydesk.rt.db.session() as session:
        return list((await session.execute(select(TapRequest.state))).scalars())


async def nothing_filed(stack: Stack, company: Company) -> None:
    await settle(stack)
    assert find_card(stack.slack) is None
    assert await request_rows(stack) == []
    assert tap_posts(stack.graph) == []
    assert stack.graph.tenant.taps_of(company.ada.entra_id) == []
    assert not [m for m in bot_dms(stack.slack, company.grace.slack_id) if "Did you expect" in m.text]


# --- the risky user ------------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "level"), [("atRisk", "high"), ("confirmedCompromised", "low")])
async def test_a_flagged_user_is_refused_vaguely_and_the_helpdesk_alerted(
    stack: Stack, company: Company, state: str, level: str
) -> None:
    ada = company.ada
    flagged_at = datetime(2026, 12, 5, 22, 15, tzinfo=UTC)
    stack.graph.tenant.set_user_risk(ada.entra_id, state, level, updated=flagged_at)

    await ask_for_pass(stack, ada.slack_id)

    await wait_dm(stack.slack, ada.slack_id, VAGUE)
    told = "\n".join(message_text(m) for m in bot_dms(stack.slack, ada.slack_id))
    assert "risk" not in told.lower() and "protection" not in told.lower(), told
    row = await wait_audit(stack, "tap.request.refused")
    assert row.outcome == "refused" and row.details["reason"] == "user_risk", row.details
    [check] = [c for c in row.details["checks"] if c["name"] == "user_risk"]
    assert check["passed"] is False
    assert f"riskState {state}, riskLevel {level}" in check["evidence"]
    alert = message_text(await wait_channel(stack.slack, SECURITY_ALERT))
    assert "<!channel>" in alert
    for fact in (f"riskState {state}", f"riskLevel {level}", "last updated 2026-12-05 22:15 UTC", ada.email):
        assert fact in alert, alert
    assert risk_reads(stack) == [200]
    await nothing_filed(stack, company)


@pytest.mark.parametrize("state", ["remediated", "dismissed", "confirmedSafe"])
async def test_a_user_whose_risk_was_resolved_gets_through_with_the_record_on_the_card(
    stack: Stack, company: Company, state: str
) -> None:
    stack.graph.tenant.set_user_risk(company.ada.entra_id, state, "none")

    await ask_for_pass(stack, company.ada.slack_id)

    card = await wait_card(stack.slack, "Waiting for approval")
    assert f"Not flagged at risk by Entra ID Protection: riskState {state}" in message_text(card)
    assert not [m for m in channel_messages(stack.slack) if SECURITY_ALERT in m.text]


async def test_a_user_never_flagged_passes_on_graphs_404(stack: Stack, company: Company) -> None:
    await ask_for_pass(stack, company.ada.slack_id)

    card = await wait_card(stack.slack, "Waiting for approval")
    assert ":white_check_mark: Not flagged at risk by Entra ID Protection: no risk record" in message_text(
        card
    )
    assert risk_reads(stack) == [404]


async def test_if_available_passes_without_p2_and_says_so_on_the_card(stack: Stack, company: Company) -> None:
    stack.graph.tenant.identity_protection_licensed = False
    stack.graph.tenant.set_user_risk(company.ada.entra_id)  # unreadable: the tenant has no P2

    await ask_for_pass(stack, company.ada.slack_id)

    card = await wait_card(stack.slack, "Waiting for approval")
    assert f"Not flagged at risk by Entra ID Protection: {RISK_UNAVAILABLE}" in message_text(card)
    assert risk_reads(stack) == [403]
    created = await wait_audit(stack, "tap.request.created")
    [check] = [c for c in created.details["checks"] if c["name"] == "user_risk"]
    assert check == {"name": "user_risk", "passed": True, "evidence": RISK_UNAVAILABLE}


@pytest.mark.keydesk_settings(risk_check="required")
async def test_required_refuses_when_the_risk_check_cannot_run(stack: Stack, company: Company) -> None:
    stack.graph.tenant.identity_protection_licensed = False
    ada = company.ada

    await ask_for_pass(stack, ada.slack_id)

    await wait_dm(stack.slack, ada.slack_id, VAGUE)
    row = await wait_audit(stack, "tap.request.refused")
    assert row.details["reason"] == "user_risk", row.details
    alert = message_text(await wait_channel(stack.slack, "risk check can't run"))
    assert RISK_UNAVAILABLE in alert and "KEYDESK_RISK_CHECK=required" in alert
    assert SECURITY_ALERT not in alert  # a configuration problem, not an attack
    assert risk_reads(stack) == [403]
    await nothing_filed(stack, company)


@pytest.mark.keydesk_settings(risk_check="required")
async def test_required_lets_a_readable_clean_record_through(stack: Stack, company: Company) -> None:
    await ask_for_pass(stack, company.ada.slack_id)

    card = await wait_card(stack.slack, "Waiting for approval")
    assert "Not flagged at risk by Entra ID Protection: no risk record" in message_text(card)


@pytest.mark.keydesk_settings(risk_check="off")
async def test_off_never_asks_identity_protection(stack: Stack, company: Company) -> None:
    stack.graph.tenant.set_user_risk(company.ada.entra_id)  # would refuse, were it read

    await ask_for_pass(stack, company.ada.slack_id)

    card = await wait_card(stack.slack, "Waiting for approval")
    assert "Not flagged at risk by Entra ID Protection: not checked (KEYDESK_RISK_CHECK=off)" in message_text(
        card
    )
    await settle(stack)
    assert risk_reads(stack) == []


async def test_identity_protection_down_fails_closed(stack: Stack, company: Company) -> None:
    stack.graph.add_fault(Fault(method="GET", path=RISKY_USERS, status=503, retry_after=0.05, times=0))
    ada = company.ada

    await ask_for_pass(stack, ada.slack_id)

    await wait_dm(stack.slack, ada.slack_id, DIRECTORY_DOWN, timeout=5.0)
    row = await wait_audit(stack, "tap.request.failed")
    assert row.details["reason"] == "directory_unavailable", row.details
    assert len(risk_reads(stack)) > 1 and set(risk_reads(stack)) == {503}  # retried, then gave up
    await nothing_filed(stack, company)


async def test_a_helpdesk_opened_request_for_a_flagged_user_is_refused_at_confirmation(
    stack: Stack, company: Company
) -> None:
    slack, ada, sam = stack.slack, company.ada, company.sam
    await slack.slash(sam.slack_id, "/keydesk", f"tap <@{ada.slack_id}>", HELPDESK_CHANNEL)
    prompt = await wait_dm(slack, ada.slack_id, "Did you ask for this?")
    stack.graph.tenant.set_user_risk(ada.entra_id, "atRisk", "medium")

    await slack.click(ada.slack_id, Action.TAP_TARGET_CONFIRM, message=prompt)

    await wait_dm(slack, ada.slack_id, VAGUE)
    assert "riskLevel medium" in message_text(await wait_channel(slack, SECURITY_ALERT))
    row = await wait_audit(stack, "tap.request.refused")
    assert row.details["reason"] == "user_risk"
    await settle(stack)
    assert await request_rows(stack) == ["cancelled"]
    assert tap_posts(stack.graph) == []


# --- a sign-in method added in the last 24 hours ---------------------------------------------------
async def test_a_method_added_two_hours_ago_needs_a_strong_verification(
    stack: Stack, company: Company
) -> None:
    slack, ada, grace, sam = stack.slack, company.ada, company.grace, company.sam
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2, minutes=5)
    stack.graph.tenant.add_authenticator(ada.entra_id, display_name="Ada's Pixel", created=two_hours_ago)

    await ask_for_pass(stack, ada.slack_id)
    question = await wait_dm(slack, grace.slack_id, "Did you expect Ada Lovelace")
    await slack.click(grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")

    card_text = message_text(card)
    assert (
        ":warning: No sign-in method added in the last 24 h: Microsoft Authenticator (Ada's Pixel) added 2 h ago"
        in card_text
    ), card_text
    outcome = await approve(slack, sam.slack_id, card, "manager_confirmed")
    assert "A sign-in method was added to this account in the last 24 hours" in outcome, outcome
    assert "In person at the desk" in outcome
    refused = await wait_audit(stack, "tap.approve.refused")
    assert refused.details["reason"] == "verification" and refused.outcome == "refused"
    assert await request_rows(stack) == ["awaiting_approval"]
    assert tap_posts(stack.graph) == []

    outcome = await approve(slack, sam.slack_id, current(slack, card), "in_person", "Came to the desk")
    assert "Approved" in outcome, outcome
    approved = await wait_audit(stack, "tap.request.approved")
    assert approved.details["verification"] == "in_person"
    await wait_dm(slack, ada.slack_id, "Your Temporary Access Pass is ready")


async def test_a_method_added_thirty_hours_ago_changes_nothing(stack: Stack, company: Company) -> None:
    slack, ada, grace, sam = stack.slack, company.ada, company.grace, company.sam
    long_ago = datetime.now(UTC) - timedelta(hours=30)
    stack.graph.tenant.add_authenticator(ada.entra_id, display_name="Ada's Pixel", created=long_ago)

    await ask_for_pass(stack, ada.slack_id)
    question = await wait_dm(slack, grace.slack_id, "Did you expect Ada Lovelace")
    await slack.click(grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")

    assert ":white_check_mark: No sign-in method added in the last 24 h: none" in message_text(card)
    assert ":warning:" not in message_text(card)
    created = await wait_audit(stack, "tap.request.created")
    assert all("strong_verification" not in c for c in created.details["checks"])
    outcome = await approve(slack, sam.slack_id, card, "manager_confirmed")
    assert "Approved" in outcome, outcome
    assert [e.action for e in await audit(stack, "tap.approve.refused")] == []


async def test_the_gateway_reads_risky_users_as_graph_answers(stack: Stack, company: Company) -> None:
    directory, tenant, ada = stack.keydesk.rt.directory, stack.graph.tenant, company.ada
    assert await directory.user_risk(ada.entra_id) is None  # 404: never flagged
    when = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
    tenant.set_user_risk(
        ada.entra_id, "confirmedCompromised", "high", detail="adminConfirmedUserCompromised", updated=when
    )
    found = await directory.user_risk(ada.entra_id)
    assert found is not None and found.at_risk and found.last_updated == when
    assert (found.user_id, found.risk_level, found.risk_detail) == (
        ada.entra_id,
        "high",
        "adminConfirmedUserCompromised",
    )
    tenant.identity_protection_licensed = False
    with pytest.raises(Forbidden):
        await directory.user_risk(ada.entra_id)
    assert [r.route for r in stack.graph.requests_to("GET", RISKY_USERS)] == [
        "GET /identityProtection/riskyUsers/{user}"
    ] * 3


@pytest.mark.keydesk_settings(
    agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=1.0, pin_seal_key_file=SEAL_FILE
)
async def test_a_desk_key_for_a_flagged_user_is_refused_and_the_channel_alerted(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    ada = company.ada
    stack.graph.tenant.set_user_risk(
        ada.entra_id, "atRisk", "medium", updated=datetime(2026, 12, 5, tzinfo=UTC)
    )
    await desk(stack, company, tmp_path)

    answer = await ask(stack, company.sam, ada, "pickup")

    assert "I can't prepare a key" in answer and "riskState atRisk" in answer, answer
    alert = await wait_channel(stack.slack, "Entra ID Protection flags the account")
    assert alert.text.startswith("<!channel>") and "riskState atRisk" in message_text(alert)
    refused = await wait_audit(stack, "desk.provision.refused")
    assert refused.details["reason"] == "user_risk"
    assert await request_rows(stack) == []


# --- again at the decision -------------------------------------------------------------------------
async def test_an_account_flagged_after_filing_is_not_approved(stack: Stack, company: Company) -> None:
    ada = company.ada
    card = await confirmed_card(stack, company)
    stack.graph.tenant.set_user_risk(
        ada.entra_id, "atRisk", "high", updated=datetime(2026, 12, 6, tzinfo=UTC)
    )

    outcome = await approve(stack.slack, company.sam.slack_id, card)

    assert "Entra ID Protection flags this account now (riskState atRisk, riskLevel high" in outcome
    refused = [r for r in await audit(stack) if r.action == "tap.approve.refused"]
    assert [r.details["reason"] for r in refused] == ["user_risk"]
    alert = await wait_channel(stack.slack, "now flags the account")
    assert alert.text.startswith("<!channel>") and SECURITY_ALERT in message_text(alert)
    await settle(stack)
    assert await request_rows(stack) == ["awaiting_approval"]
    assert await audit(stack, "tap.request.approved") == []
    assert tap_posts(stack.graph) == []


async def test_identity_protection_down_at_the_decision_decides_nothing(
    stack: Stack, company: Company
) -> None:
    card = await confirmed_card(stack, company)
    stack.graph.add_fault(Fault(method="GET", path=RISKY_USERS, status=503, retry_after=0.05, times=0))

    outcome = await approve(stack.slack, company.sam.slack_id, card)

    assert "couldn't check the account's risk" in outcome and "Nothing was decided" in outcome
    refused = [r for r in await audit(stack) if r.action == "tap.approve.refused"]
    assert [r.details["reason"] for r in refused] == ["risk_check_down"]
    assert await request_rows(stack) == ["awaiting_approval"]


async def test_without_p2_the_helpdesk_hears_once_an_hour_that_the_check_is_off(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    stack.graph.tenant.identity_protection_licensed = False
    notice = "The Entra ID Protection risk check is not running"

    def notices() -> int:
        return len([m for m in channel_messages(stack.slack) if notice in message_text(m)])

    await ask_for_pass(stack, company.ada.slack_id)
    await wait_channel(stack.slack, notice)
    bob = add_new_hire(stack, "U0BOB", "bob", "Bob Byte", company.grace)
    await ask_for_pass(stack, bob.slack_id)
    await wait_card(stack.slack, "Bob Byte")
    await settle(stack)
    assert notices() == 1

    app_clock.advance(timedelta(minutes=61))
    cy = add_new_hire(stack, "U0CY", "cy", "Cy Twombly", company.grace)
    await ask_for_pass(stack, cy.slack_id)
    await wait_card(stack.slack, "Cy Twombly")
    await settle(stack)
    assert notices() == 2


# --- at the reveal ---------------------------------------------------------------------------------
async def test_an_account_flagged_after_approval_gets_no_pass(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    dm = await approved_dm(stack, company)
    stack.graph.tenant.set_user_risk(ada.entra_id, "atRisk", "high")

    view = await reveal(slack, ada.slack_id, dm)

    assert VAGUE in view_text(view) and pass_value(view) is None
    assert "risk" not in view_text(view).lower()
    refused = await wait_audit(stack, "tap.reveal.refused")
    assert refused.details["reason"] == "user_risk" and refused.details["request_closed"] is True
    alert = message_text(await wait_channel(slack, SECURITY_ALERT))
    assert "pressed" in alert and "now flags the account" in alert and "riskLevel high" in alert
    await settle(stack)
    assert await request_rows(stack) == ["cancelled"]
    assert tap_posts(stack.graph) == []


async def test_a_flagged_account_s_live_pass_is_deleted_when_it_reveals_again(
    stack: Stack, company: Company
) -> None:
    slack, ada = stack.slack, company.ada
    _, dm = await revealed(stack, company)
    await wait_audit(stack, "tap.issued")  # on record: a later Reveal replaces it
    [tap] = stack.graph.tenant.taps_of(ada.entra_id)
    stack.graph.tenant.set_user_risk(ada.entra_id, "confirmedCompromised", "high")

    again = await reveal(slack, ada.slack_id, current(slack, dm))

    assert VAGUE in view_text(again) and pass_value(again) is None
    assert tap.deleted
    assert len(tap_posts(stack.graph)) == 1  # no second pass
    refused = await wait_audit(stack, "tap.reveal.refused")
    assert refused.details["passes_deleted"] == 1
    await wait_channel(slack, SECURITY_ALERT)
    await settle(stack)
    assert await request_rows(stack) == ["cancelled"]
    told = message_text(current(slack, dm))
    assert "cancelled and its pass deleted" in told and "risk" not in told.lower(), told


async def test_when_the_risk_cannot_be_read_at_the_reveal_nothing_is_created(
    stack: Stack, company: Company
) -> None:
    slack, ada = stack.slack, company.ada
    dm = await approved_dm(stack, company)
    stack.graph.add_fault(Fault(method="GET", path=RISKY_USERS, status=503, retry_after=0.01, times=0))

    view = await reveal(slack, ada.slack_id, dm, timeout=10.0)

    assert "couldn't check your account" in view_text(view) and pass_value(view) is None
    refused = await wait_audit(stack, "tap.reveal.refused")
    assert refused.details["reason"] == "risk_check_down"
    assert await request_rows(stack) == ["approved"]  # she may simply try again
    assert tap_posts(stack.graph) == []

    stack.graph.clear_faults()
    again = await reveal(slack, ada.slack_id, current(slack, dm))
    assert pass_value(again), view_text(again)
