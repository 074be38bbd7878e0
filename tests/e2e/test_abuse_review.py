"""Security review of security.md §3: the abuse cases that had no test of their own, or only part of one,
and server-side rights on the desk flows' buttons (a forged click must meet the same check as the UI).

Each test drives the running app through signed Slack requests (or the agent's HTTP link) and asserts
the refusal, what the person read, the audit row, and that nothing happened in Entra. Tests marked
`xfail(strict=True)` document a gap that is still open (see their reason); they fail loudly once fixed.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.sandbox.company import Company
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.slack.ids import Action, ViewId
from bot.store.models.desk import DeskAgent, DeskJob
from bot.store.models.key_inventory import KeyRecord

from . import test_tap_canary
from .helpers import (
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
    open_modal,
    pass_value,
    quiesce,
    reveal,
    revealed,
    settle,
    submit_approval,
    tap_deletes,
    tap_posts,
    view_text,
    wait_audit,
    wait_channel,
    wait_dm,
)
from .test_desk_link import KEY_FILE, delivered_job, ephemeral, paired, refusal, rows
from .test_key_custody import SERIAL, provisioned, state_of
from .test_tap_canary import database_text, holds

debug_logs = test_tap_canary.debug_logs  # the fixture: production logging at DEBUG, captured
DESK = pytest.mark.keydesk_settings(agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=0.3)
MAILBOX = "keydesk@northwind.example"


def no_pass_created(stack: Stack) -> None:
    assert tap_posts(stack.graph) == []
    assert all(not taps for taps in (stack.graph.tenant.taps_of(u) for u in stack.graph.tenant.users))


async def request_states(stack: Stack) -> list[str]:
    from sqlalchemy import select

    from bot.store.models.tap_requests import TapRequest

    async with stack.keydesk.rt.db.read() as session:
        return list(
            (await session.execute(select(TapRequest.state).order_by(TapRequest.created_at))).scalars()
        )


@contextmanager
def database_down(stack: Stack) -> Iterator[None]:
    """Every statement fails as if the database server went away (the engine and its pool stay)."""
    engine = stack.keydesk.rt.db.engine.sync_engine

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down"))

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


# --- 35: the database is down: nothing is asked, decided or issued ------------------------------------
async def test_35_database_down_files_and_decides_nothing(stack: Stack, company: Company) -> None:
    slack, ada, sam = stack.slack, company.ada, company.sam
    with database_down(stack):
        delivery = await ask_for_pass(stack, ada.slack_id)
        await settle(stack)
    assert delivery.status >= 500  # not acknowledged: Slack delivers it again once we can keep it
    assert find_card(slack) is None and await request_states(stack) == []

    card = await confirmed_card(stack, company)
    modal = await open_modal(slack, sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    with database_down(stack):
        await slack.submit_view(sam.slack_id, modal.id, {"verification": {"method": "in_person"}})
        await settle(stack)
    assert await request_states(stack) == ["awaiting_approval"]
    assert not await audit(stack, "tap.request.approved")
    no_pass_created(stack)


async def test_35_database_down_at_reveal_creates_no_pass(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    dm = await approved_dm(stack, company)
    await settle(stack)

    with database_down(stack):
        await slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm)
        await settle(stack, quiet=0.3)

    no_pass_created(stack)  # REL-6: no audit row, no Graph call
    assert await request_states(stack) == ["approved"]
    assert Action.TAP_REVEAL in action_ids(current(slack, dm).blocks)  # she can try again later


async def test_35_database_down_at_reveal_tells_the_person_to_try_later(
    stack: Stack, company: Company
) -> None:
    slack, ada = stack.slack, company.ada
    dm = await approved_dm(stack, company)
    await settle(stack)
    since = len(slack.calls)
    with database_down(stack):
        await slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm)
        opened = await slack.wait_for("views.open", since=since)
        view_id = str(opened.response["view"]["id"])
        await settle(stack, quiet=0.3)
        view = slack.view(view_id)
    assert view is not None and "Creating your pass" not in view_text(view)
    text = view_text(view).lower()
    assert "try again in a few minutes" in text and "nothing was issued" in text
    assert pass_value(view) is None
    no_pass_created(stack)  # fail closed
    assert await request_states(stack) == ["approved"]

    # once the database answers again, the same button works
    shown = await reveal(slack, ada.slack_id, current(slack, dm))
    assert pass_value(shown)


async def test_35_database_down_a_click_elsewhere_is_answered_plainly(
    stack: Stack, company: Company, debug_logs: io.StringIO
) -> None:
    """Any other listener failing on the database: the person is told to try later (never the error text)."""
    slack, grace = stack.slack, company.grace
    await ask_for_pass(stack, company.ada.slack_id)
    question = await wait_dm(slack, grace.slack_id, "Did you expect")
    with database_down(stack):
        await slack.click(grace.slack_id, Action.MANAGER_CONFIRM, message=question)
        told = await eventually(
            lambda: [
                m
                for m in [*slack.ephemerals(user_id=grace.slack_id), *slack.core.workspace.all_messages()]
                if "can't reach my database" in m.text
            ],
            "a plain answer to Grace",
        )
    assert "try again in a few minutes" in told[0].text
    assert "OperationalError" not in told[0].text + json.dumps(told[0].blocks)
    assert "slack.listener.database_unavailable" in debug_logs.getvalue()


async def test_35_database_down_the_deadline_pump_logs_once_and_backs_off(
    stack: Stack, debug_logs: io.StringIO
) -> None:
    deadlines = stack.keydesk.rt.deadlines
    with database_down(stack):
        for _ in range(5):  # the scheduler's own ticks run too, every 0.2 s in the stack
            await deadlines._pump_job()
        await asyncio.sleep(0)
    logged = debug_logs.getvalue()
    assert logged.count("deadlines.pump_failed") == 1  # once per outage, not once per tick
    assert logged.count("deadlines.pump_still_failing") <= 1  # the ticks were skipped, not retried
    await eventually(
        lambda: "deadlines.pump_recovered" in debug_logs.getvalue(), "the pump to recover", timeout=4.0
    )


# --- 32: the pass runs out while keydesk is down ---------------------------------------------------------
async def test_32_pass_expiring_while_down_is_deleted_and_redacted_right_after_restart(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    await revealed(stack, company)
    [tap] = graph.tenant.taps_of(ada.entra_id)
    await settle(stack)
    await quiesce(stack)
    await stack.stop_app()
    app_clock.advance(timedelta(minutes=tap.lifetime_minutes, seconds=30))  # ran out while down
    await stack.start_app(clock=app_clock)

    # no further clock movement: the startup sweep alone must do it (G3: well within 60 s)
    dm = await wait_dm(slack, ada.slack_id, "Your pass ran out", timeout=5.0)
    assert Action.TAP_REVEAL not in action_ids(dm.blocks)
    assert tap.deleted
    assert [r.path.rsplit("/", 1)[1] for r in tap_deletes(graph, ada.entra_id)] == [tap.id]
    row = await wait_audit(stack, "tap.pass.expired")
    assert row.details["tap_id"] == tap.id
    assert await request_states(stack) == ["pass_expired"]


async def test_tap4_an_open_pass_modal_is_redacted_when_the_pass_expires(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    view, _ = await revealed(stack, company)
    [tap] = stack.graph.tenant.taps_of(company.ada.entra_id)
    await settle(stack)
    app_clock.advance(timedelta(minutes=tap.lifetime_minutes, seconds=5))
    await wait_audit(stack, "tap.pass.expired", timeout=3.0)
    await settle(stack)
    now = stack.slack.view(view.id)
    assert now is not None  # still open on her screen (nobody closed it)
    assert pass_value(now) is None and not holds(view_text(now) + json.dumps(now.blocks), tap.value)
    assert "This pass has expired" in view_text(now)


async def test_tap4_an_open_pass_modal_is_redacted_when_a_new_pass_replaces_it(
    stack: Stack, company: Company
) -> None:
    """The first modal may still be open on another device; the simulator's single client has closed it
    (views.open replaces the stack), so Slack answers `not_found`, which is fine: nothing else happens."""
    slack, ada = stack.slack, company.ada
    first, dm = await revealed(stack, company)
    [old_tap] = stack.graph.tenant.taps_of(ada.entra_id)
    await settle(stack)
    since = len(slack.calls)
    second = await reveal(slack, ada.slack_id, current(slack, dm))
    assert pass_value(second) and second.id != first.id
    update = await slack.wait_for(
        "views.update", lambda c: c.params.get("view_id") == first.id, since=since, include_failed=True
    )
    sent = json.dumps(update.params.get("view"))
    assert "replaced by a new one" in sent and "```" not in sent and not holds(sent, old_tap.value)
    await settle(stack)
    assert await request_states(stack) == ["issued"]


async def test_tap4_an_open_pass_modal_is_redacted_when_the_manager_says_it_looks_wrong(
    stack: Stack, company: Company
) -> None:
    slack = stack.slack
    view, _ = await revealed(stack, company)
    notice = await wait_dm(slack, company.grace.slack_id, "was issued to Ada Lovelace")
    assert Action.MANAGER_LOOKS_WRONG in action_ids(notice.blocks)
    await slack.click(company.grace.slack_id, Action.MANAGER_LOOKS_WRONG, message=notice)
    await wait_audit(stack, "tap.looks_wrong")
    await settle(stack)
    now = slack.view(view.id)
    assert now is not None and pass_value(now) is None
    assert "This pass was cancelled" in view_text(now)


async def test_tap4_a_closed_pass_modal_is_no_trouble_when_the_pass_expires(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    view, _ = await revealed(stack, company)
    [tap] = stack.graph.tenant.taps_of(company.ada.entra_id)
    await settle(stack)
    await stack.slack.close_view(company.ada.slack_id, view.id)
    app_clock.advance(timedelta(minutes=tap.lifetime_minutes, seconds=5))
    await wait_audit(stack, "tap.pass.expired", timeout=3.0)
    await wait_dm(stack.slack, company.ada.slack_id, "Your pass ran out", timeout=3.0)
    assert tap.deleted and await request_states(stack) == ["pass_expired"]


# --- 31: an exception while handling the pass: the canary stays in the modal call only ------------------
async def test_31_failure_while_showing_the_pass_leaks_it_nowhere(
    stack: Stack,
    company: Company,
    debug_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    dm = await approved_dm(stack, company)
    slack.add_fault("views.update", error="internal_error", status=500)  # raises inside the pass handling

    await slack.click(ada.slack_id, Action.TAP_REVEAL, message=dm)

    await wait_dm(slack, ada.slack_id, "I couldn't show your pass, so I cancelled it")
    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert tap.deleted and tap.value
    await wait_audit(stack, "tap.issue.abandoned")
    await settle(stack)
    records = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    printed = capfd.readouterr()
    for where, text in {
        "rendered logs": debug_logs.getvalue(),
        "log records": records,
        "stdout": printed.out,
        "stderr": printed.err,
        "database tables": await database_text(stack),
        "audit log": json.dumps([e.as_json() for e in await audit(stack)], default=str),
    }.items():
        assert not holds(text, tap.value), f"the pass leaked into the {where}"
    for message in [*slack.core.workspace.all_messages(), *slack.ephemerals()]:
        assert not holds(message.text + json.dumps(message.blocks), tap.value)


# --- 40: a compromised Slack account asks for a pass for itself -------------------------------------------
@pytest.mark.parametrize("method", ["security_questions", "manager_confirmed", ""])
async def test_40_knowledge_answers_or_a_missing_check_never_approve(
    stack: Stack, company: Company, method: str
) -> None:
    slack, sam = stack.slack, company.sam
    await ask_for_pass(stack, company.ada.slack_id)  # the attacker holds Ada's Slack session
    await wait_dm(slack, company.grace.slack_id, "Did you expect")  # the manager has not answered
    card = find_card(slack)
    assert card is not None
    modal = await open_modal(slack, sam.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    offered = set(re.findall(r'"value": "([a-z_]+)"', json.dumps(modal.blocks)))
    assert offered == set(stack.settings.verification_choices)  # no knowledge questions on offer

    # what Slack's client would not send: an option the modal never offered, or none at all
    [kind] = {b["element"]["type"] for b in modal.blocks if b.get("block_id") == "verification"}
    option = {"text": {"type": "plain_text", "text": method}, "value": method} if method else None
    values: dict[str, Any] = {"verification": {"method": {"type": kind, "selected_option": option}}}
    delivery = await slack.submit_view(sam.slack_id, modal.id, values, forge=True)

    if method:
        row = await wait_audit(stack, "tap.approve.refused")
        assert (row.outcome, row.details["reason"]) == ("refused", "verification")

        def refused() -> str | None:
            view = slack.view(modal.id)
            text = view_text(view) if view is not None else ""
            return text if ":no_entry:" in text else None

        outcome = await eventually(refused, "the refusal in Sam's modal")
        assert "verified" in outcome or "manager hasn't confirmed" in outcome
    else:  # refused at the ack, before any work: the modal says what is missing
        assert "Choose how you verified the person." in json.dumps(delivery.body)
    await settle(stack)
    assert await request_states(stack) == ["awaiting_approval"]
    assert not await audit(stack, "tap.request.approved")
    no_pass_created(stack)


@pytest.mark.keydesk_settings(notify_mailbox=MAILBOX)
async def test_g8_an_issued_pass_is_announced_by_mail_and_to_the_manager(
    stack: Stack, company: Company
) -> None:
    stack.graph.tenant.add_user("keydesk notifications", MAILBOX)
    await revealed(stack, company)

    def issued_mail() -> list[Any]:  # the request's filing was mailed before; this is the pass's own
        return [m for m in stack.graph.tenant.sent_mail if "was issued" in m.subject]

    [mail] = await eventually(issued_mail, "the notification mail")
    assert [r.address for r in mail.to] == [company.ada.email]
    assert "If this wasn't you" in mail.body
    filed = [m for m in stack.graph.tenant.sent_mail if "was filed" in m.subject]
    assert [[r.address for r in m.to] for m in filed] == [[company.ada.email]]
    await wait_dm(stack.slack, company.grace.slack_id, "was issued to Ada Lovelace")
    row = await wait_audit(stack, "tap.notified")
    assert (row.details["email"], row.details["manager"]) == (True, True)
    [tap] = stack.graph.tenant.taps_of(company.ada.entra_id)
    assert not holds(mail.body + mail.subject, tap.value)


@pytest.mark.keydesk_settings(notify_mailbox=MAILBOX)
async def test_40_the_person_is_mailed_when_a_request_is_filed_in_their_name(
    stack: Stack, company: Company
) -> None:
    stack.graph.tenant.add_user("keydesk notifications", MAILBOX)
    await ask_for_pass(stack, company.ada.slack_id)
    await wait_dm(stack.slack, company.grace.slack_id, "Did you expect")
    [mail] = await eventually(lambda: stack.graph.tenant.sent_mail, "a mail to Ada", timeout=2.0)
    assert [r.address for r in mail.to] == [company.ada.email]


# --- 37: a revoked desk sends a result ---------------------------------------------------------------------
@DESK
async def test_37_revoked_agent_posting_a_result_is_refused_and_alerted(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    link = await paired(stack, company, tmp_path)
    job = link.check_job(await delivered_job(stack, company, link))
    await stack.slack.slash(company.alex.slack_id, "/keydesk", "desk revoke desk-1", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.agent.revoked")

    response = await asyncio.to_thread(link.post_result, job.id, link.result_envelope(job, ok=True))

    assert response.status_code == 403 and response.json()["error"] == "revoked"
    await refusal(stack, "desk.result.refused", "revoked")
    await wait_channel(stack.slack, "Revoked desk agent `desk-1` is still calling")
    [row] = await rows(stack, DeskJob)
    assert row.state != "done" and await rows(stack, KeyRecord) == []


# --- desk flows: the server checks rights, whatever button was pressed ------------------------------------
@DESK
@pytest.mark.parametrize("button", [Action.DESK_AGENT_CONFIRM, Action.DESK_AGENT_REJECT])
async def test_a_non_approver_cannot_confirm_or_reject_a_desk_agent(
    stack: Stack, company: Company, tmp_path: Path, button: Action
) -> None:
    await paired(stack, company, tmp_path, confirm=False)
    card = await wait_channel(stack.slack, "Desk agent `desk-1` paired")
    morgan = company.morgan.slack_id
    stack.slack.channel(HELPDESK_CHANNEL).members.add(morgan)  # even in the channel, with the button

    await stack.slack.click(morgan, button, message=card, forge=True)

    assert "approvers group" in await ephemeral(stack, morgan, "approvers group")
    verb = "confirm" if button == Action.DESK_AGENT_CONFIRM else "reject"
    await refusal(stack, f"desk.agent.{verb}.refused", "not_authorised")
    [agent] = await rows(stack, DeskAgent)
    assert agent.state == "awaiting_confirmation" and agent.confirmed_by_slack_id is None


@DESK
async def test_a_forged_retire_button_is_refused_for_non_approvers(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await provisioned(stack, company, tmp_path, company.ada)
    sam = company.sam.slack_id
    await stack.slack.slash(sam, "/keydesk", f"key {SERIAL}", HELPDESK_CHANNEL)

    def card() -> Any:
        hits = [m for m in stack.slack.ephemerals(user_id=sam) if Action.KEY_RETIRE in action_ids(m.blocks)]
        return hits[-1] if hits else None

    message = await eventually(card, "the key card with its Retire button")
    morgan = company.morgan.slack_id
    stack.slack.channel(HELPDESK_CHANNEL).members.add(morgan)

    await stack.slack.click(morgan, Action.KEY_RETIRE, message=message, forge=True)

    assert "retire keys" in await ephemeral(stack, morgan, "approvers group")
    await refusal(stack, "key.retire.refused", "not_authorised")
    assert await state_of(stack) == "provisioned"
    assert not await audit(stack, "key.retired")


@DESK
async def test_the_keys_own_user_cannot_hand_it_over_to_themselves_by_the_button(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    """An approver whose own key it is: the hand-over modal opens (rights are checked on submit), the
    submission is refused on the server."""
    await provisioned(stack, company, tmp_path, company.alex)
    alex = company.alex.slack_id
    await stack.slack.slash(alex, "/keydesk", f"key {SERIAL}", HELPDESK_CHANNEL)

    def card() -> Any:
        hits = [
            m for m in stack.slack.ephemerals(user_id=alex) if Action.KEY_HANDOVER in action_ids(m.blocks)
        ]
        return hits[-1] if hits else None

    message = await eventually(card, "the key card with its Hand over button")
    await stack.slack.click(alex, Action.KEY_HANDOVER, message=message)
    modal = await eventually(
        lambda: next((v for v in stack.slack.open_views(alex) if v.callback_id == ViewId.KEY_HANDOVER), None),
        "the hand-over modal",
    )
    await stack.slack.submit_view(alex, modal.id, {"verification": {"method": "photo_id"}})

    await refusal(stack, "key.handover.refused", "self_handover")
    assert await state_of(stack) == "provisioned"
    assert not await audit(stack, "key.handed_over")


# --- IDV-4 with the admin process on: each approver must check the person themselves -------------------
@pytest.mark.keydesk_settings(allow_privileged_targets=True)
async def test_idv4_a_privileged_account_is_not_approved_on_the_managers_slack_click(
    stack: Stack, company: Company
) -> None:
    """Two Slack identities (the admin's and their manager's) must not be enough: 'Manager confirmed' is a
    click in Slack, so for a privileged account each approval needs a check the approver made themselves."""
    from bot.sandbox.company import HELPDESK_ADMIN_ROLE

    slack = stack.slack
    stack.graph.tenant.assign_role(company.ada.entra_id, HELPDESK_ADMIN_ROLE, eligible=True)
    card = await confirmed_card(stack, company)  # Grace (her manager) clicked "yes" in Slack
    assert "admin process" in json.dumps(card.blocks)

    for approver in (company.sam, company.alex):
        modal = await open_modal(
            slack, approver.slack_id, Action.TAP_APPROVE, current(slack, card), ViewId.TAP_APPROVE
        )
        outcome = await submit_approval(slack, approver.slack_id, modal, "manager_confirmed")
        assert ":no_entry:" in outcome and "privileged account" in outcome, outcome
    rows = [e for e in await audit(stack, "tap.approve.refused") if e.details["reason"] == "verification"]
    assert len(rows) == 2
    assert not await audit(stack, "tap.request.first_approval")
    assert await request_states(stack) == ["awaiting_approval"]
    no_pass_created(stack)

    # a check the approver made themselves still works
    outcome = await approve(slack, company.sam.slack_id, current(slack, card), "in_person")
    assert "Approval 1 of 2 recorded" in outcome
