"""IDV-6 / G8 for keys prepared at a desk: the person's manager is told in Slack (with "This looks wrong")
and the person's mailbox by mail; the manager's button removes the passkey in Entra, ends the person's
sessions, marks the key lost so it is not handed over, destroys a pickup PIN still waiting and alerts the
helpdesk, once. Driven end to end: Slack and Graph simulators, a paired desk agent with a soft key."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import agent.jobs
from agent.keys.secret import Pin
from bot.sandbox.company import Company, Person
from bot.sandbox.graph_sim import Fault
from bot.sandbox.slack_sim import SimMessage
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.slack.ids import Action
from bot.store.models.desk_provisioning import DeskProvisioning, SealedPin
from bot.store.models.key_inventory import KeyEvent, KeyRecord

from .helpers import (
    ShiftableClock,
    action_ids,
    add_new_hire,
    audit,
    channel_messages,
    current,
    eventually,
    message_text,
    settle,
    stale_click,
    view_text,
    wait_audit,
    wait_channel,
    wait_dm,
)
from .test_desk_link import refusal, rows
from .test_desk_provisioning import (
    AT_DESK_PIN,
    KEY_FILE,
    SEAL_FILE,
    SOFT,
    approve,
    ask,
    desk,
    key_card,
    prepared,
    request_of,
    reveal_pin,
)

SETTINGS: dict[str, Any] = {
    "agent_signing_key_file": KEY_FILE,
    "agent_long_poll_seconds": 1.0,
    "pin_seal_key_file": SEAL_FILE,
}
MAILBOX = "keydesk@northwind.example"
WITH_MAIL = pytest.mark.keydesk_settings(**SETTINGS, notify_mailbox=MAILBOX)
CANARY = "Kd-Canary-PIN-7a3c"  # the pickup key's random PIN, so a leak is recognisable
NOTICE = "A security key was prepared for Ada Lovelace"
FIDO2_ITEM = r"/authentication/fido2Methods/[^/]+$"
QUICK_RETRY = 0.05

pytestmark = pytest.mark.keydesk_settings(**SETTINGS)


@pytest.fixture
def canary_pin(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(agent.jobs, "random_pin", lambda *a, **k: Pin(CANARY))
    return CANARY


async def notice_of(stack: Stack, company: Company) -> SimMessage:
    return await wait_dm(stack.slack, company.grace.slack_id, NOTICE, timeout=3.0)


def everything_in(message: SimMessage) -> str:
    return message.text + json.dumps(message.blocks)


async def press(stack: Stack, who: Person, notice: SimMessage, *, forge: bool = False) -> None:
    await stack.slack.click(
        who.slack_id, Action.DESK_LOOKS_WRONG, message=current(stack.slack, notice), forge=forge
    )


def passkey_in_entra(stack: Stack, person: Person, method_id: str) -> bool:
    return any(m.id == method_id for m in stack.graph.tenant.methods_of(person.entra_id))


def fido2_deletes(stack: Stack, person: Person) -> list[Any]:
    return [
        r for r in stack.graph.requests_to("DELETE", FIDO2_ITEM) if f"/users/{person.entra_id}/" in r.path
    ]


def revocations(stack: Stack, person: Person) -> list[Any]:
    return stack.graph.requests_to("POST", rf"^/users/{person.entra_id}/revokeSignInSessions$")


def loud_alerts(stack: Stack) -> list[SimMessage]:
    return [
        m
        for m in channel_messages(stack.slack, HELPDESK_CHANNEL)
        if "Security alert" in m.text and "flagged the security key" in message_text(m)
    ]


async def the_provisioning(stack: Stack) -> DeskProvisioning:
    [prov] = await rows(stack, DeskProvisioning)
    assert prov.method_id and prov.key_record_id and prov.key_report
    return prov


# --- the notices ----------------------------------------------------------------------------------------
@WITH_MAIL
async def test_pickup_the_manager_is_told_with_the_key_and_the_person_is_mailed_never_the_pin(
    stack: Stack, company: Company, tmp_path: Path, canary_pin: str
) -> None:
    stack.graph.tenant.add_user("keydesk notifications", MAILBOX)
    at, _ = await prepared(stack, company, tmp_path, "pickup")
    assert at.key.pin.is_set  # the canary is the key's PIN
    prov = await the_provisioning(stack)
    notice = await notice_of(stack, company)
    text = message_text(notice)
    for fact in (
        "desk-1",
        f"<@{company.sam.slack_id}>",  # the technician
        f"<@{company.alex.slack_id}>",  # the approver
        prov.key_report["serial_number"],
        prov.key_report["model"],
        "for pickup",
    ):
        assert fact in text, fact
    assert "<!date^" in text  # when
    assert action_ids(notice.blocks) == {Action.DESK_LOOKS_WRONG}
    assert canary_pin not in everything_in(notice)

    def registered_mail() -> list[Any]:
        return [m for m in stack.graph.tenant.sent_mail if "security key was registered" in m.subject]

    [mail] = await eventually(registered_mail, "the mail to Ada")
    assert [r.address for r in mail.to] == [company.ada.email]
    assert "desk-1" in mail.body and prov.key_report["serial_number"] in mail.body
    assert "If you didn't expect this" in mail.body
    assert canary_pin not in mail.subject + mail.body
    row = await wait_audit(stack, "desk.notified")
    assert row.details == {"request_id": prov.request_id, "manager": True, "email": True}
    await settle(stack)
    for message in stack.slack.core.workspace.all_messages():  # the PIN is still only in its sealed row
        assert canary_pin not in everything_in(message)


async def test_at_desk_the_manager_is_told_and_no_mail_without_a_mailbox(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await prepared(stack, company, tmp_path, "at-desk")
    prov = await the_provisioning(stack)
    notice = await notice_of(stack, company)
    text = message_text(notice)
    assert "desk-1" in text and prov.key_report["serial_number"] in text and SOFT.name in text
    assert "set its PIN" in text
    assert AT_DESK_PIN not in everything_in(notice)
    row = await wait_audit(stack, "desk.notified")
    assert (row.details["manager"], row.details["email"]) == (True, False)
    assert stack.graph.tenant.sent_mail == []


async def test_with_no_manager_and_no_mailbox_the_helpdesk_is_asked_to_tell_someone(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    nia = add_new_hire(stack, "U0NIA", "nia", "Nia Nomanager", None)

    await prepared(stack, company, tmp_path, "at-desk", target=nia)

    told = await wait_channel(stack.slack, "was told about the key prepared in their name")
    text = message_text(told)
    assert f"Only <@{nia.slack_id}>" in text and "isn't reachable in Slack" in text
    assert "KEYDESK_NOTIFY_MAILBOX is not set" in text and told.thread_ts
    row = await wait_audit(stack, "desk.notified")
    assert (row.details["manager"], row.details["email"]) == (False, False)


# --- "This looks wrong" -----------------------------------------------------------------------------------
async def test_only_the_manager_may_stop_the_key(stack: Stack, company: Company, tmp_path: Path) -> None:
    await prepared(stack, company, tmp_path, "pickup")
    prov = await the_provisioning(stack)
    notice = await notice_of(stack, company)
    for who in (company.sam, company.ada):  # the technician, and the person themselves
        await press(stack, who, notice, forge=True)
        await wait_dm(stack.slack, who.slack_id, "Only the person's manager can use this button")
    await refusal(stack, "desk.looks_wrong.refused", "not_the_manager")
    assert len(await audit(stack, "desk.looks_wrong.refused")) == 2
    await settle(stack)
    assert passkey_in_entra(stack, company.ada, prov.method_id or "")
    assert fido2_deletes(stack, company.ada) == [] and revocations(stack, company.ada) == []
    [record] = await rows(stack, KeyRecord)
    assert record.state == "provisioned"
    assert len(await rows(stack, SealedPin)) == 1
    assert loud_alerts(stack) == []
    assert Action.DESK_LOOKS_WRONG in action_ids(current(stack.slack, notice).blocks)


@WITH_MAIL
async def test_the_manager_stops_a_pickup_key_everywhere_once(
    stack: Stack, company: Company, tmp_path: Path, canary_pin: str
) -> None:
    stack.graph.tenant.add_user("keydesk notifications", MAILBOX)
    await prepared(stack, company, tmp_path, "pickup")
    ada, grace = company.ada, company.grace
    prov = await the_provisioning(stack)
    method_id = prov.method_id or ""
    assert passkey_in_entra(stack, ada, method_id)
    offer = await wait_dm(stack.slack, ada.slack_id, "Reveal PIN")
    notice = await notice_of(stack, company)

    # two presses at once (a double click on the same copy of the notice), then one more later
    await asyncio.gather(
        *(stale_click(stack.slack, grace.slack_id, notice, Action.DESK_LOOKS_WRONG) for _ in "ab")
    )
    await wait_dm(
        stack.slack, grace.slack_id, "Done: the key is removed from Ada Lovelace's account", timeout=3.0
    )
    await wait_dm(stack.slack, grace.slack_id, "already stopped", timeout=3.0)
    await stale_click(stack.slack, grace.slack_id, notice, Action.DESK_LOOKS_WRONG)
    await eventually(
        lambda: len([m for m in stack.slack.dm_messages(grace.slack_id) if "already stopped" in m.text]) == 2,
        "the second refusal",
        3.0,
    )
    await settle(stack)

    # Entra: the passkey is gone, the sessions were revoked, each exactly once
    assert not passkey_in_entra(stack, ada, method_id)
    assert [r.path.rsplit("/", 1)[1] for r in fido2_deletes(stack, ada)] == [method_id]
    assert len(revocations(stack, ada)) == 1
    assert [r.user_id for r in stack.graph.tenant.revocations] == [ada.entra_id]
    # the inventory: lost, with an event saying why; never handed over
    [record] = await rows(stack, KeyRecord)
    assert record.state == "lost"
    flagged = [e for e in await rows(stack, KeyEvent) if e.kind == "flagged"]
    assert [(e.actor, e.details["reason"], e.details["was"]) for e in flagged] == [
        (f"slack:{grace.slack_id}", "manager_flagged", "provisioned")
    ]
    # the sealed PIN is destroyed, and its offer says so
    assert await rows(stack, SealedPin) == []
    destroyed = await wait_audit(stack, "desk.pin.destroyed")
    assert destroyed.details["reason"] == "looks_wrong"
    assert "deleted its PIN" in message_text(current(stack.slack, offer))
    gone = await reveal_pin(stack, ada, offer, stale=True)
    assert "no longer here" in view_text(gone) and canary_pin not in view_text(gone)
    # one loud alert in the card's thread; Grace's notice now shows the outcome, not the button
    [alert] = loud_alerts(stack)
    assert alert.text.startswith("<!channel> :rotating_light:") and alert.thread_ts
    assert "removed its passkey" in message_text(alert) and "ended their sign-in sessions" in message_text(
        alert
    )
    assert "marked the key lost" in message_text(alert)
    assert Action.DESK_LOOKS_WRONG not in action_ids(current(stack.slack, notice).blocks)
    # Ada hears it in Slack and by mail
    await wait_dm(stack.slack, ada.slack_id, "removed it from your account")
    assert [m.to[0].address for m in stack.graph.tenant.sent_mail if "was removed" in m.subject] == [
        ada.email
    ]
    # the audit: one stop (its intent first), two refusals
    kinds = [e.action for e in await audit(stack, "desk.looks_wrong")]
    assert kinds.count("desk.looks_wrong.started") == 1 and kinds.count("desk.looks_wrong") == 1
    stop = await wait_audit(stack, "desk.looks_wrong")
    assert stop.outcome == "ok" and stop.details["passkey_removed"] and stop.details["sessions_revoked"]
    assert stop.details["pin_destroyed"] and stop.details["key"] == "marked"
    refused = [e for e in await audit(stack) if e.action == "desk.looks_wrong.refused"]
    assert [e.details["reason"] for e in refused] == ["already_stopped", "already_stopped"]
    assert (await request_of(stack, ada)).state == "revoked"  # the claim: one compare-and-set
    card = current(stack.slack, await key_card(stack, ada.name))
    assert "Stopped: the manager said this key looks wrong" in message_text(card)
    for message in [*stack.slack.core.workspace.all_messages(), *stack.slack.ephemerals()]:
        assert canary_pin not in everything_in(message)


async def test_entra_failing_during_the_stop_is_said_plainly(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await prepared(stack, company, tmp_path, "at-desk")
    ada, grace = company.ada, company.grace
    prov = await the_provisioning(stack)
    method_id = prov.method_id or ""
    notice = await notice_of(stack, company)
    stack.graph.add_fault(
        Fault(method="DELETE", path=FIDO2_ITEM, status=503, retry_after=QUICK_RETRY, times=0)
    )

    await press(stack, grace, notice)

    reply = await wait_dm(stack.slack, grace.slack_id, "I couldn't reach Microsoft Entra", timeout=5.0)
    assert "remove the key from their account" in reply.text and "*not* done yet" in reply.text
    alert = await wait_channel(stack.slack, "do this by hand now", timeout=3.0)
    assert method_id in message_text(alert) and "ended their sign-in sessions" in message_text(alert)
    assert "removed its passkey" not in message_text(alert)
    assert passkey_in_entra(stack, ada, method_id)  # still there, and nobody pretends otherwise
    assert len(revocations(stack, ada)) == 1  # the other half still happened
    row = await wait_audit(stack, "desk.looks_wrong")
    assert row.outcome == "failed"
    assert (row.details["passkey_removed"], row.details["sessions_revoked"]) == (False, True)
    [record] = await rows(stack, KeyRecord)
    assert record.state == "lost"  # not handed over meanwhile


async def test_a_stop_entra_did_not_take_is_retried_until_done(
    stack: Stack, company: Company, tmp_path: Path, app_clock: ShiftableClock
) -> None:
    await prepared(stack, company, tmp_path, "at-desk")
    ada = company.ada
    method_id = (await the_provisioning(stack)).method_id or ""
    notice = await notice_of(stack, company)
    stack.graph.add_fault(
        Fault(method="DELETE", path=FIDO2_ITEM, status=503, retry_after=QUICK_RETRY, times=0)
    )
    await press(stack, company.grace, notice)
    await wait_audit(stack, "desk.looks_wrong")
    assert "tries again every minute" in message_text(await wait_channel(stack.slack, "do this by hand now"))

    app_clock.advance(timedelta(minutes=2))  # still down: the retry fails and waits again
    await eventually(lambda: len(revocations(stack, ada)) >= 2, "a second attempt", 5.0)
    assert passkey_in_entra(stack, ada, method_id)
    assert await audit(stack, "desk.looks_wrong.finished") == []

    stack.graph.clear_faults()  # Entra answers again
    app_clock.advance(timedelta(minutes=2))
    finished = await wait_audit(stack, "desk.looks_wrong.finished", timeout=5.0)
    assert finished.outcome == "ok" and finished.details["passkey_removed"]
    assert not passkey_in_entra(stack, ada, method_id)
    done = await wait_channel(stack.slack, "keydesk finished stopping the key")
    assert done.thread_ts and "Nothing is left to do by hand" in message_text(done)


async def test_a_key_registered_but_never_finished_is_announced_too(
    stack: Stack, company: Company, tmp_path: Path, app_clock: ShiftableClock
) -> None:
    """The desk never confirms the forced PIN change: the key is registered all the same, so it is told."""
    at = await desk(stack, company, tmp_path)
    await ask(stack, company.sam, company.ada, "at-desk")
    await approve(stack, company.alex, await key_card(stack, company.ada.name))
    await at.serve()  # create; the finish job is never served
    await wait_audit(stack, "desk.provision.registered", timeout=3.0)
    assert not [e for e in await audit(stack) if e.action == "desk.notified"]  # not before it is complete
    app_clock.advance(timedelta(minutes=6))
    completed = await wait_audit(stack, "desk.provision.completed", timeout=4.0)
    assert completed.outcome == "failed" and "never confirmed" in completed.details["warning"]
    notice = await notice_of(stack, company)
    assert Action.DESK_LOOKS_WRONG in action_ids(notice.blocks)
    assert AT_DESK_PIN not in everything_in(notice)
    assert (await wait_audit(stack, "desk.notified")).details["manager"] is True
