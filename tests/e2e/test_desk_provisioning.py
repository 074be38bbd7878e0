"""Preparing a security key for someone at a desk, end to end: a technician asks in Slack, a second
approver approves the card, the paired desk agent (a soft key behind python-fido2) creates the passkey,
the Graph simulator verifies and registers it, the desk then forces a PIN change, the key lands in the
inventory, and the person is told (and, for a pickup key, reveals the random PIN once). Plus the abuse
cases: privileged target, self-approval, target approving, model refused, challenge expired, a key with
a PIN already, a revoked desk, someone else revealing, and the PIN canary."""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest

import agent.jobs
from agent.cli import report_json
from agent.jobs import PinQuestion, registry
from agent.keys.metadata import ModelCatalog
from agent.keys.secret import Pin
from agent.keys.timing import SystemTimer
from agent.link import AgentHome, AgentLink
from agent.softkey import (
    SoftAuthenticator,
    SoftHands,
    SoftKeySource,
    Transport,
    root_certificate_pem,
    soft_key_model,
)
from agent.softkey.demo import prepare_for_pickup
from bot.sandbox.company import YUBIKEY_5_NFC, Company, Person
from bot.sandbox.graph_sim.policy import KeyRestrictions
from bot.sandbox.slack_sim import SimMessage
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.slack.ids import Action, ViewId
from bot.store.models.desk import DeskJob
from bot.store.models.desk_provisioning import DeskProvisioning, SealedPin
from bot.store.models.key_inventory import KeyRecord
from bot.store.models.tap_requests import TapRequest

from . import test_tap_canary
from .helpers import (
    ShiftableClock,
    bot_dms,
    current,
    eventually,
    message_text,
    open_modal,
    settle,
    stale_click,
    submit_approval,
    view_text,
    wait_audit,
    wait_channel,
    wait_dm,
)
from .test_desk_link import paired, refusal, rows
from .test_tap_canary import database_files, database_text, holds

debug_logs = test_tap_canary.debug_logs  # the fixture: production logging at DEBUG, captured
TMP = Path(tempfile.mkdtemp(prefix="keydesk-provision-test-"))
KEY_FILE = TMP / "agent-link.key"
SEAL_FILE = TMP / "pin-seal.key"
SOFT = soft_key_model()
AT_DESK_PIN = "735194"

pytestmark = pytest.mark.keydesk_settings(
    agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=1.0, pin_seal_key_file=SEAL_FILE
)


# --- the desk ---------------------------------------------------------------------------------------
class Desk:
    """A paired desk agent with a soft key; `typed` answers the at-desk PIN prompt."""

    def __init__(
        self,
        home: Path,
        key: SoftAuthenticator,
        *,
        typed: str | None = AT_DESK_PIN,
        skew: timedelta = timedelta(0),
    ) -> None:
        self.key = key
        self.asked: list[PinQuestion] = []
        self.typed = typed
        source = SoftKeySource(key, transport=Transport.HID)
        catalog = ModelCatalog.bundled().with_models(SOFT)
        hands = SoftHands(key, timer=SystemTimer())
        handlers = registry(
            source,
            catalog,
            report_json,
            hands,
            SystemTimer(),
            facts=lambda: None,
            ask_pin=self._ask,
            now=lambda: datetime.now(UTC) + skew,
        )
        self.screen: list[str] = []
        self.link = AgentLink(
            AgentHome(home), handlers, http=httpx.Client(timeout=10), say=self.screen.append
        )

    def _ask(self, question: PinQuestion) -> Pin | None:
        self.asked.append(question)
        return Pin(self.typed) if self.typed else None

    async def serve(self) -> None:
        """Serve exactly one job (fails the test when none was waiting)."""
        assert await asyncio.to_thread(self.link.poll_once) is True, "no job was waiting at the desk"


async def desk(
    stack: Stack, company: Company, tmp: Path, key: SoftAuthenticator | None = None, **kw: Any
) -> Desk:
    stack.graph.tenant.trust_key_model(SOFT.aaguid, SOFT.name, root_certificate_pem())
    await paired(stack, company, tmp)
    return Desk(tmp / "desk-1", key or SoftAuthenticator(), **kw)


async def ask(
    stack: Stack,
    technician: Person,
    target: Person,
    mode: str,
    desk_name: str = "desk-1",
    channel: str | None = HELPDESK_CHANNEL,
) -> str:
    """Run the slash command; return the answer the technician reads (after the 'Checking…' ack)."""
    before = len(stack.slack.ephemerals(user_id=technician.slack_id))
    text = f"desk provision {desk_name} <@{target.slack_id}|{target.name}> {mode}"
    await stack.slack.slash(technician.slack_id, "/keydesk", text, channel)

    def probe() -> str | None:
        shown = [message_text(m) for m in stack.slack.ephemerals(user_id=technician.slack_id)[before:]]
        answers = [t for t in shown if not t.startswith("Checking")]
        return answers[-1] if answers else None

    return await eventually(probe, f"the answer to {technician.name}", 3.0)


async def key_card(stack: Stack, name: str) -> SimMessage:
    return await wait_channel(stack.slack, f"Security key request for {name}")


async def approve(stack: Stack, approver: Person, card: SimMessage, method: str = "in_person") -> str:
    modal = await open_modal(stack.slack, approver.slack_id, Action.TAP_APPROVE, card, ViewId.TAP_APPROVE)
    return await submit_approval(stack.slack, approver.slack_id, modal, method)


async def thread_text(stack: Stack, card: SimMessage, contains: str, timeout: float = 3.0) -> str:
    def probe() -> str | None:
        replies = [m for m in stack.slack.messages(HELPDESK_CHANNEL) if m.thread_ts == card.ts]
        hits = [message_text(m) for m in replies if contains in message_text(m)]
        return hits[-1] if hits else None

    return await eventually(probe, f"a reply in the card's thread containing {contains!r}", timeout)


async def request_of(stack: Stack, person: Person) -> TapRequest:
    [request] = [r for r in await rows(stack, TapRequest) if r.target_slack_id == person.slack_id]
    return request


async def prepared(
    stack: Stack, company: Company, tmp: Path, mode: str, target: Person | None = None, **kw: Any
) -> tuple[Desk, SimMessage]:
    """Ask (Sam), approve (Alex), and let the desk create and finish the key."""
    target = target or company.ada
    at = await desk(stack, company, tmp, **kw)
    assert "a second approver must approve" in await ask(stack, company.sam, target, mode)
    card = await key_card(stack, target.name)
    assert "Desk `desk-1` is preparing the key" in await approve(stack, company.alex, card)
    await at.serve()  # create
    await wait_audit(stack, "desk.provision.registered", timeout=3.0)
    await at.serve()  # finish
    await wait_audit(stack, "desk.provision.completed", timeout=3.0)
    return at, card


def fido2_posts(stack: Stack, person: Person) -> list[Any]:
    return [
        r
        for r in stack.graph.requests_to("POST", r"/authentication/fido2Methods$")
        if f"/users/{person.entra_id}/" in r.path
    ]


async def reveal_pin(
    stack: Stack, person: Person, message: SimMessage, *, forge: bool = False, stale: bool = False
) -> Any:
    since = len(stack.slack.calls)
    if stale:  # the button on the copy the person still sees, after the bot changed the message
        await stale_click(stack.slack, person.slack_id, message, Action.DESK_PIN_REVEAL)
    else:
        await stack.slack.click(
            person.slack_id, Action.DESK_PIN_REVEAL, message=current(stack.slack, message), forge=forge
        )
    opened = await stack.slack.wait_for("views.open", since=since)
    view_id = str(opened.response["view"]["id"])

    def probe() -> Any:
        view = stack.slack.view(view_id)
        return view if view is not None and "Opening" not in view_text(view) else None

    return await eventually(probe, "the PIN modal to settle")


def pin_in(view: Any) -> str | None:
    for block in view.blocks:
        if block.get("block_id") == "pin":
            return str(block["text"]["text"]).strip("`")
    return None


# --- the happy paths ----------------------------------------------------------------------------------
async def test_at_desk_the_person_types_their_pin_and_the_key_is_registered_then_forced(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    at, card = await prepared(stack, company, tmp_path, "at-desk")
    ada = company.ada
    [question] = at.asked
    assert question.person == "Ada Lovelace" and question.min_length >= 4
    # Graph verified and registered the passkey (v1.0: the 5-minute challenge)
    [post] = fido2_posts(stack, ada)
    assert post.version == "v1.0"
    [method] = [
        m for m in stack.graph.tenant.methods_of(ada.entra_id) if getattr(m, "aaguid", None) == SOFT.aaguid
    ]
    assert method.attestation_level == "attested"
    # the key: the person's PIN, the passkey, and only after the registration the forced change
    assert at.key.pin.pin_hash == sha256(AT_DESK_PIN.encode()).digest()[:16]
    assert at.key.pin.force_change and at.key.pin.min_length == 6
    [stored] = at.key.discoverable
    assert stored.rp_id == "login.microsoft.com" and stored.cred_random is not None
    # inventory, request, people
    [record] = await rows(stack, KeyRecord)
    assert (record.state, record.user_entra_id, record.entra_method_id) == (
        "provisioned",
        ada.entra_id,
        method.id,
    )
    request = await request_of(stack, ada)
    assert (request.kind, request.state, request.decided_by_slack_id) == (
        "desk_key",
        "completed",
        company.alex.slack_id,
    )
    [prov] = await rows(stack, DeskProvisioning)
    assert (prov.step, prov.method_id, prov.error) == ("done", method.id, None)
    await wait_dm(stack.slack, ada.slack_id, "Your security key is ready")
    assert "Done." in await thread_text(stack, card, "asks for a new PIN at first use")
    assert not [m for m in bot_dms(stack.slack, ada.slack_id) if "Reveal PIN" in message_text(m)]
    assert await rows(stack, SealedPin) == []
    completed = await wait_audit(stack, "desk.provision.completed")
    assert completed.details["force_pin_change"] is True


async def test_pickup_random_pin_is_revealed_once_to_its_owner_then_destroyed(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    at, card = await prepared(stack, company, tmp_path, "pickup")
    ada = company.ada
    assert at.asked == []  # nobody at the desk was asked for (or shown) a PIN
    assert at.key.pin.force_change
    [row] = await rows(stack, SealedPin)
    assert row.sealed_pin and row.target_slack_id == ada.slack_id
    assert await thread_text(stack, card, "ready for pickup")
    offer = await wait_dm(stack.slack, ada.slack_id, "Reveal PIN")
    # someone else (even a helpdesk approver) cannot open it
    other = await reveal_pin(stack, company.sam, offer, forge=True)
    assert pin_in(other) is None and "belongs to someone else" in view_text(other)
    await refusal(stack, "desk.pin.reveal_refused", "not_owner")
    assert len(await rows(stack, SealedPin)) == 1
    # the owner sees it once: it is the key's PIN, the modal says it must be changed, then it is gone
    view = await reveal_pin(stack, ada, offer)
    pin = pin_in(view)
    assert pin and at.key.pin.pin_hash == sha256(pin.encode()).digest()[:16]
    assert "asks you to change this PIN" in view_text(view)
    await wait_audit(stack, "desk.pin.revealed")
    assert await rows(stack, SealedPin) == []
    assert "revealed this PIN" in message_text(current(stack.slack, offer))
    again = await reveal_pin(stack, ada, offer, stale=True)
    assert pin_in(again) is None and "no longer here" in view_text(again)
    [record] = await rows(stack, KeyRecord)
    assert record.state == "provisioned" and record.user_slack_id == ada.slack_id


async def test_an_unrevealed_pin_is_destroyed_after_24_hours(
    stack: Stack, company: Company, tmp_path: Path, app_clock: ShiftableClock
) -> None:
    _, card = await prepared(stack, company, tmp_path, "pickup")
    offer = await wait_dm(stack.slack, company.ada.slack_id, "Reveal PIN")
    app_clock.advance(timedelta(hours=24, seconds=5))
    row = await wait_audit(stack, "desk.pin.destroyed", timeout=4.0)
    assert row.details["reason"] == "expired"
    assert await rows(stack, SealedPin) == []
    await eventually(
        lambda: "deleted it" in message_text(current(stack.slack, offer)), "the offer redacted", 3.0
    )
    await thread_text(stack, card, "didn't reveal the key's PIN within 24 hours")


@pytest.mark.keydesk_settings(
    agent_signing_key_file=KEY_FILE,
    agent_long_poll_seconds=1.0,
    pin_seal_key_file=SEAL_FILE,
    provisioning_challenge_minutes=60,
)
async def test_a_longer_challenge_goes_through_the_beta_api(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await prepared(stack, company, tmp_path, "at-desk", target=company.morgan)  # Morgan already has a key
    [post] = fido2_posts(stack, company.morgan)
    assert post.version == "beta"
    started = await wait_audit(stack, "desk.provision.started")
    assert started.details["api_version"] == "beta" and started.details["challenge_minutes"] == 60


# --- who may ask and who may approve ------------------------------------------------------------------
async def test_a_privileged_target_is_refused_before_any_card(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await desk(stack, company, tmp_path)
    answer = await ask(stack, company.sam, company.lin, "pickup")
    assert "privileged" in answer
    await refusal(stack, "desk.provision.refused", "not_privileged")
    await wait_channel(stack.slack, "a privileged account")
    assert await rows(stack, TapRequest) == [] and await rows(stack, DeskJob) == []


async def test_the_technician_cannot_approve_their_own_request(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await desk(stack, company, tmp_path)
    await ask(stack, company.sam, company.ada, "pickup")
    card = await key_card(stack, company.ada.name)
    answer = await approve(stack, company.sam, card)
    assert "can't approve a request you opened" in answer
    await refusal(stack, "tap.approve.refused", "not_authorised")
    assert (await request_of(stack, company.ada)).state == "awaiting_approval"
    assert await rows(stack, DeskJob) == []


async def test_the_target_cannot_approve_a_key_for_themselves(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    """Alex is an approver and already has a key: a second key is fine, approving it himself is not."""
    await desk(stack, company, tmp_path)
    await ask(stack, company.sam, company.alex, "at-desk")
    card = await key_card(stack, company.alex.name)
    answer = await approve(stack, company.alex, card)
    assert "one for yourself" in answer
    await refusal(stack, "tap.approve.refused", "not_authorised")
    assert await rows(stack, DeskJob) == []


async def test_a_technician_cannot_ask_for_themselves_or_without_rights(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await desk(stack, company, tmp_path)
    assert "for yourself" in await ask(stack, company.sam, company.sam, "pickup")
    await refusal(stack, "desk.provision.refused", "self")
    assert "approvers group" in await ask(stack, company.ada, company.morgan, "pickup", channel=None)
    await refusal(stack, "desk.provision.refused", "not_authorised")
    assert await rows(stack, TapRequest) == []


# --- Graph and the key saying no ----------------------------------------------------------------------
async def test_a_key_model_the_policy_refuses_is_explained_and_deleted_from_the_key(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    stack.graph.tenant.fido2_policy.key_restrictions = KeyRestrictions(
        is_enforced=True, enforcement_type="allow", aaguids=[YUBIKEY_5_NFC]
    )
    at = await desk(stack, company, tmp_path)
    await ask(stack, company.sam, company.ada, "pickup")
    card = await key_card(stack, company.ada.name)
    await approve(stack, company.alex, card)
    await at.serve()  # create: Graph refuses the model
    failed = await wait_audit(stack, "desk.provision.failed", timeout=3.0)
    assert "doesn't allow this key model" in failed.details["reason"]
    text = await thread_text(stack, card, "doesn't allow this key model")
    assert SOFT.aaguid in text and "Nothing was registered" in text
    assert len(at.key.discoverable) == 1
    await at.serve()  # discard
    await wait_audit(stack, "desk.provision.discarded")
    assert at.key.discoverable == []
    await thread_text(stack, card, "deleted the refused passkey")
    assert (await request_of(stack, company.ada)).state == "cancelled"
    assert await rows(stack, SealedPin) == [] and await rows(stack, KeyRecord) == []
    await wait_dm(stack.slack, company.ada.slack_id, "couldn't be prepared")


async def test_a_challenge_that_ran_out_at_the_desk_leaves_the_key_untouched(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    at = await desk(stack, company, tmp_path, skew=timedelta(minutes=6))  # the desk's clock is past expiry
    await ask(stack, company.sam, company.ada, "at-desk")
    card = await key_card(stack, company.ada.name)
    await approve(stack, company.alex, card)
    await at.serve()
    await thread_text(stack, card, "has expired")
    assert not at.key.pin.is_set and at.key.discoverable == []
    assert (await request_of(stack, company.ada)).state == "cancelled"
    assert fido2_posts(stack, company.ada) == []


async def test_a_challenge_graph_no_longer_accepts_is_explained_and_the_passkey_deleted(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    at = await desk(stack, company, tmp_path)
    await ask(stack, company.sam, company.ada, "pickup")
    card = await key_card(stack, company.ada.name)
    await approve(stack, company.alex, card)
    for record in stack.graph.tenant.challenges.values():  # Entra's clock ran past the 5 minutes
        record.expires = datetime.now(UTC) - timedelta(seconds=1)
    await at.serve()
    await thread_text(stack, card, "challenge ran out")
    await at.serve()
    assert at.key.discoverable == []
    assert (await request_of(stack, company.ada)).state == "cancelled"


async def test_a_key_that_already_has_a_pin_is_not_prepared(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    key = SoftAuthenticator()
    prepare_for_pickup(key)  # a key someone already used
    before = list(key.discoverable)
    at = await desk(stack, company, tmp_path, key=key)
    await ask(stack, company.sam, company.ada, "pickup")
    card = await key_card(stack, company.ada.name)
    await approve(stack, company.alex, card)
    await at.serve()
    await thread_text(stack, card, "already has a PIN")
    assert key.discoverable == before
    assert (await request_of(stack, company.ada)).state == "cancelled"


# --- the desk itself ----------------------------------------------------------------------------------
async def test_a_revoked_desk_gets_no_provisioning(stack: Stack, company: Company, tmp_path: Path) -> None:
    await desk(stack, company, tmp_path)
    await stack.slack.slash(company.alex.slack_id, "/keydesk", "desk revoke desk-1", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.agent.revoked")
    assert "revoked" in await ask(stack, company.sam, company.ada, "pickup")
    await refusal(stack, "desk.provision.refused", "desk_revoked")
    assert await rows(stack, TapRequest) == []


async def test_a_desk_revoked_after_the_approval_fails_the_request_cleanly(
    stack: Stack, company: Company, tmp_path: Path, app_clock: ShiftableClock
) -> None:
    at = await desk(stack, company, tmp_path)
    await ask(stack, company.sam, company.ada, "pickup")
    card = await key_card(stack, company.ada.name)
    await approve(stack, company.alex, card)
    await wait_audit(stack, "desk.job.queued")
    await stack.slack.slash(company.alex.slack_id, "/keydesk", "desk revoke desk-1", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.agent.revoked")
    app_clock.advance(timedelta(minutes=6))
    failed = await wait_audit(stack, "desk.provision.failed", timeout=4.0)
    assert "revoked" in failed.details["reason"]
    assert (await request_of(stack, company.ada)).state == "cancelled"
    assert await rows(stack, SealedPin) == []
    assert at.key.discoverable == [] and not at.key.pin.is_set


async def test_a_desk_that_never_answers_fails_the_request(
    stack: Stack, company: Company, tmp_path: Path, app_clock: ShiftableClock
) -> None:
    await desk(stack, company, tmp_path)
    await ask(stack, company.sam, company.ada, "at-desk")
    card = await key_card(stack, company.ada.name)
    await approve(stack, company.alex, card)
    app_clock.advance(timedelta(minutes=6))
    await thread_text(stack, card, "did not answer in time", timeout=4.0)
    assert (await request_of(stack, company.ada)).state == "cancelled"


async def test_nobody_typing_a_pin_at_the_desk_cancels(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    at = await desk(stack, company, tmp_path, typed=None)
    await ask(stack, company.sam, company.ada, "at-desk")
    card = await key_card(stack, company.ada.name)
    await approve(stack, company.alex, card)
    await at.serve()
    await thread_text(stack, card, "No PIN was typed")
    assert not at.key.pin.is_set


async def test_the_form_opens_when_something_is_missing(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await desk(stack, company, tmp_path)
    await stack.slack.slash(
        company.sam.slack_id, "/keydesk", f"desk provision desk-1 <@{company.ada.slack_id}>", HELPDESK_CHANNEL
    )
    view = await eventually(
        lambda: next(
            (
                v
                for v in stack.slack.open_views(company.sam.slack_id)
                if v.callback_id == ViewId.DESK_PROVISION
            ),
            None,
        ),
        "the provisioning form",
    )
    await stack.slack.submit_view(
        company.sam.slack_id,
        view.id,
        {"desk": {"desk": "desk-1"}, "user": {"user": company.ada.slack_id}, "mode": {"mode": "pickup"}},
    )
    await key_card(stack, company.ada.name)
    await wait_audit(stack, "desk.provision.requested")
    [prov] = await rows(stack, DeskProvisioning)
    assert prov.pin_mode == "pickup" and prov.reply_channel == HELPDESK_CHANNEL


# --- the canary -----------------------------------------------------------------------------------------
CANARY = "Kd-Canary-PIN-5e1f"


async def test_the_pickup_pin_only_ever_reaches_the_reveal_modal(
    stack: Stack,
    company: Company,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(agent.jobs, "random_pin", lambda *a, **k: Pin(CANARY))
    at, _ = await prepared(stack, company, tmp_path, "pickup")
    assert at.key.pin.pin_hash == sha256(CANARY.encode()).digest()[:16]
    before_reveal = await database_text(stack)
    assert not holds(before_reveal, CANARY), "the PIN rests in the database in the clear"
    offer = await wait_dm(stack.slack, company.ada.slack_id, "Reveal PIN")
    view = await reveal_pin(stack, company.ada, offer)
    assert pin_in(view) == CANARY
    await settle(stack)
    logs = debug_logs.getvalue()
    records = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    printed = capfd.readouterr()
    for where, text in {
        "rendered logs": logs,
        "log records": records,
        "stdout": printed.out,
        "stderr": printed.err,
        "database tables": await database_text(stack),
        "desk screen": "\n".join(at.screen),
        "Graph request bodies": "\n".join(json.dumps(r.json) for r in stack.graph.requests),
        "audit log": json.dumps([e.as_json() for e in await stack.keydesk.rt.audit.entries()], default=str),
    }.items():
        assert not holds(text, CANARY), f"the PIN leaked into the {where}"
    assert CANARY.encode() not in database_files(stack.settings.database_url)
    carrying = [c for c in stack.slack.calls if holds(json.dumps(c.params), CANARY)]
    assert [(c.method, c.params.get("view_id")) for c in carrying] == [("views.update", view.id)]
    for message in [*stack.slack.core.workspace.all_messages(), *stack.slack.ephemerals()]:
        assert not holds(message.text + json.dumps(message.blocks), CANARY)
    for shown in stack.slack.open_views(company.ada.slack_id) + stack.slack.open_views(company.sam.slack_id):
        assert CANARY not in (shown.private_metadata or "")
