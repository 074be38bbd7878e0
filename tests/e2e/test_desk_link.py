"""Desk agents end to end: pairing over HTTP, an inspect job from Slack to a soft key and into the
inventory, and the abuse cases for agents (security.md 37-39 and AGT-1/2): each refusal is asserted with
its audit row and, where it matters, the alert in the helpdesk channel."""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent import protocol
from agent.cli import report_json
from agent.jobs import registry
from agent.keys.metadata import ModelCatalog
from agent.keys.timing import SystemTimer
from agent.link import AgentHome, AgentLink, LinkError, LinkPending, LinkStopped
from agent.link import pair as agent_pair
from agent.softkey import SoftAuthenticator, SoftHands, SoftKeySource, Transport, soft_key_model
from agent.softkey.demo import prepare_for_pickup
from bot.sandbox.company import Company, Person, seed_company
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack, open_stack
from bot.services import desk_link
from bot.slack.ids import Action
from bot.store.models.desk import DeskAgent, DeskJob
from bot.store.models.key_inventory import KeyEvent, KeyRecord

from . import test_tap_canary
from .conftest import shut_down
from .helpers import ShiftableClock, eventually, message_text, wait_audit, wait_channel, wait_dm
from .test_tap_canary import database_files, database_text, holds

debug_logs = test_tap_canary.debug_logs  # the fixture: production logging at DEBUG, captured
KEY_FILE = Path(tempfile.mkdtemp(prefix="keydesk-test-")) / "agent-link.key"
CODE = re.compile(r"`([A-Z2-9]{4}(?:-[A-Z2-9]{4}){3})`")

pytestmark = pytest.mark.keydesk_settings(agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=1.0)


# --- helpers ---------------------------------------------------------------------------------------
async def ephemeral(stack: Stack, user: str, contains: str, timeout: float = 3.0, skip: int = 0) -> str:
    """The newest ephemeral to `user` containing `contains`, once more than `skip` of them exist."""

    def probe() -> str | None:
        hits = [message_text(m) for m in stack.slack.ephemerals(user_id=user) if contains in message_text(m)]
        return hits[-1] if len(hits) > skip else None

    return await eventually(probe, f"an ephemeral to {user} containing {contains!r}", timeout)


async def pairing_code(stack: Stack, person: Person) -> str:
    marker = "one-time pairing code"
    before = sum(marker in message_text(m) for m in stack.slack.ephemerals(user_id=person.slack_id))
    await stack.slack.slash(person.slack_id, "/keydesk", "desk pair", HELPDESK_CHANNEL)
    text = await ephemeral(stack, person.slack_id, marker, skip=before)
    match = CODE.search(text)
    assert match, text
    return match.group(1)


def soft_link(home: Path, key: SoftAuthenticator | None = None) -> AgentLink:
    key = key or SoftAuthenticator()
    source = SoftKeySource(key, transport=Transport.HID)
    catalog = ModelCatalog.bundled().with_models(soft_key_model())
    hands = SoftHands(key, timer=SystemTimer())
    handlers = registry(source, catalog, report_json, hands, SystemTimer(), facts=lambda: None)
    return AgentLink(AgentHome(home), handlers, http=httpx.Client(timeout=10), say=lambda _text: None)


async def paired(
    stack: Stack, company: Company, tmp: Path, name: str = "desk-1", confirm: bool = True
) -> AgentLink:
    code = await pairing_code(stack, company.sam)
    await asyncio.to_thread(agent_pair, stack.url, code, name, AgentHome(tmp / name))
    card = await wait_channel(stack.slack, f"Desk agent `{name}` paired")
    if confirm:
        await stack.slack.click(company.alex.slack_id, Action.DESK_AGENT_CONFIRM, message=card)
        await wait_audit(stack, "desk.agent.confirmed")
    return soft_link(tmp / name)


async def refusal(stack: Stack, action: str, reason: str) -> None:
    row = await wait_audit(stack, action)
    assert row.outcome == "refused", row
    assert row.details["reason"] == reason, row.details


async def rows(stack: Stack, model: Any) -> list[Any]:
    async with stack.keydesk.rt.db.read() as session:
        return list((await session.execute(select(model))).scalars().all())


async def delivered_job(
    stack: Stack, company: Company, link: AgentLink, name: str = "desk-1"
) -> dict[str, Any]:
    """Ask for an inspect at `name` and fetch the signed job the way the agent would (without serving it)."""
    await stack.slack.slash(company.sam.slack_id, "/keydesk", f"desk inspect {name}", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.job.queued")
    url = f"{link.pairing.server}/agent/v1/jobs"
    response = await asyncio.to_thread(link.http.get, url, headers=link.auth_header())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# --- the happy path --------------------------------------------------------------------------------
async def test_pair_confirm_inspect_and_inventory(stack: Stack, company: Company, tmp_path: Path) -> None:
    code = await pairing_code(stack, company.sam)
    pairing = await asyncio.to_thread(agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path / "desk-1"))
    assert pairing.state == "awaiting_confirmation"
    for name in ("agent.key", "link.json"):
        assert (tmp_path / "desk-1" / name).stat().st_mode & 0o777 == 0o600
    assert KEY_FILE.stat().st_mode & 0o777 == 0o600
    assert code not in KEY_FILE.read_text()
    card = await wait_channel(stack.slack, "Desk agent `desk-1` paired")
    assert "second approver" in message_text(card)
    link = soft_link(tmp_path / "desk-1")
    with pytest.raises(LinkPending, match="not confirmed"):  # unconfirmed: no jobs, the agent waits
        await asyncio.to_thread(link.poll_once)

    await stack.slack.click(company.alex.slack_id, Action.DESK_AGENT_CONFIRM, message=card)
    await ephemeral(stack, company.alex.slack_id, "Confirmed: desk agent `desk-1`")
    [agent] = await rows(stack, DeskAgent)
    assert (agent.state, agent.confirmed_by_slack_id) == ("active", company.alex.slack_id)

    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect desk-1", HELPDESK_CHANNEL)
    await ephemeral(stack, company.sam.slack_id, "Sent to desk `desk-1`")
    assert await asyncio.to_thread(link.poll_once) is True
    dm = await wait_dm(stack.slack, company.sam.slack_id, "inspected 1 key(s)")
    assert "KD-SOFT-0001" in message_text(dm)
    [record] = await rows(stack, KeyRecord)
    assert (record.serial, record.state, record.desk_agent_id) == ("KD-SOFT-0001", "stock", agent.id)
    [event] = await rows(stack, KeyEvent)
    assert (event.kind, event.actor) == ("inspected", f"slack:{company.sam.slack_id}")
    [job] = await rows(stack, DeskJob)
    assert job.state == "done"

    await stack.slack.slash(company.alex.slack_id, "/keydesk", "key KD-SOFT-0001", HELPDESK_CHANNEL)
    history = await ephemeral(stack, company.alex.slack_id, "*History*")
    assert "inspected at `desk-1`" in history and record.aaguid in history

    await stack.slack.slash(company.alex.slack_id, "/keydesk", "desk list", HELPDESK_CHANNEL)
    assert "`desk-1`: active" in await ephemeral(stack, company.alex.slack_id, "*Desk agents*")
    # nothing secret at rest or in Slack: the code is hashed, the private keys are not in the database
    async with stack.keydesk.rt.db.read() as session:
        from bot.store.models.desk import PairingCode

        [stored] = (await session.execute(select(PairingCode))).scalars().all()
    assert stored.code_hash == protocol.pairing_code_hash(code) and stored.used_at is not None


async def test_reset_job_through_the_public_api(stack: Stack, company: Company, tmp_path: Path) -> None:
    """What later code (provisioning) does: submit_job + on_result, served by a soft key at the desk."""
    await paired(stack, company, tmp_path)
    key = SoftAuthenticator()
    prepare_for_pickup(key)
    assert key.credentials and key.pin.is_set
    link = soft_link(tmp_path / "desk-1", key)
    seen: list[desk_link.JobOutcome] = []

    async def on_reset(_rt: object, outcome: desk_link.JobOutcome) -> None:
        seen.append(outcome)

    desk_link.on_result("reset", on_reset)
    try:
        [agent] = await rows(stack, DeskAgent)
        target = company.ada.entra_id
        job_id = await desk_link.submit_job(stack.keydesk.rt, agent.id, "reset", target, {"why": "test"})
        assert await asyncio.to_thread(link.poll_once) is True
        await eventually(lambda: seen, "the reset result handler")
    finally:
        desk_link._handlers["reset"].remove(on_reset)
    [outcome] = seen
    assert (outcome.job_id, outcome.ok, outcome.target_entra_id) == (job_id, True, target)
    assert outcome.result["reset"] is True and outcome.params == {"why": "test"}
    assert not key.credentials and not key.pin.is_set
    row = await wait_audit(stack, "desk.job.finished")
    assert row.details["kind"] == "reset" and row.outcome == "ok"


async def test_pairing_code_and_private_keys_never_rest_in_logs_or_database(
    stack: Stack,
    company: Company,
    tmp_path: Path,
    debug_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = await pairing_code(stack, company.sam)
    await asyncio.to_thread(agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path / "desk-1"))
    await wait_channel(stack.slack, "Desk agent `desk-1` paired")
    agent_pem = (tmp_path / "desk-1" / "agent.key").read_text()
    server_pem = KEY_FILE.read_text()
    secrets = [code, code.replace("-", "")]
    secrets += [line for pem in (agent_pem, server_pem) for line in pem.splitlines() if "-----" not in line]
    records = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    printed = capfd.readouterr()
    everywhere = "\n".join(
        [debug_logs.getvalue(), records, printed.out, printed.err, await database_text(stack)]
    )
    channel = "\n".join(message_text(m) for m in stack.slack.messages(HELPDESK_CHANNEL))
    for secret in secrets:
        assert not holds(everywhere, secret), "a pairing secret reached the logs or the database"
        assert not holds(channel, secret), "a pairing secret reached the helpdesk channel"
    assert database_files(stack.settings.database_url).find(code.encode()) == -1


async def test_the_cli_pairs_and_serves_a_job(stack: Stack, company: Company, tmp_path: Path) -> None:
    from rich.console import Console

    from agent.cli import Desk, main

    screen = io.StringIO()
    desk = Desk(console=Console(file=screen, width=200))
    home = ["--home", str(tmp_path / "cli")]
    code = await pairing_code(stack, company.sam)
    argv = ["pair", "--server", stack.url, "--code", code, "--name", "front-desk", *home]
    assert await asyncio.to_thread(main, argv, desk) == 0
    assert (
        "Paired as front-desk" in screen.getvalue()
        and "second approver must now confirm" in screen.getvalue()
    )
    card = await wait_channel(stack.slack, "Desk agent `front-desk` paired")
    fingerprint = protocol.fingerprint(protocol.public_key_text(AgentHome(tmp_path / "cli").key()))
    assert fingerprint in screen.getvalue() and fingerprint in message_text(card)
    await stack.slack.click(company.alex.slack_id, Action.DESK_AGENT_CONFIRM, message=card)
    await wait_audit(stack, "desk.agent.confirmed")
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect front-desk", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.job.queued")
    assert await asyncio.to_thread(main, ["run", "--soft", "--once", *home], desk) == 0
    assert "Job inspect" in screen.getvalue() and "result sent" in screen.getvalue()
    await wait_dm(stack.slack, company.sam.slack_id, "Desk `front-desk` inspected 1 key(s)")
    assert await asyncio.to_thread(main, ["status", *home], desk) == 0
    assert "Paired as front-desk" in screen.getvalue()


async def test_nothing_waiting_ends_the_long_poll_empty(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    link = await paired(stack, company, tmp_path)
    assert await asyncio.to_thread(link.poll_once) is False


# --- abuse: pairing --------------------------------------------------------------------------------
async def test_non_approver_gets_no_code(stack: Stack, company: Company) -> None:
    await stack.slack.slash(company.morgan.slack_id, "/keydesk", "desk pair")
    text = await ephemeral(stack, company.morgan.slack_id, "approvers group")
    assert "pair desk agents" in text and not CODE.search(text)
    await refusal(stack, "desk.pair_code.refused", "not_authorised")


async def test_code_reused_is_refused_and_alerted(stack: Stack, company: Company, tmp_path: Path) -> None:
    code = await pairing_code(stack, company.sam)
    await asyncio.to_thread(agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path / "a"))
    with pytest.raises(LinkError, match="already used"):
        await asyncio.to_thread(agent_pair, stack.url, code, "desk-2", AgentHome(tmp_path / "b"))
    await refusal(stack, "desk.pair.refused", "code_used")
    await wait_channel(stack.slack, "tried a pairing code that was already used")
    assert not (tmp_path / "b" / "agent.key").exists()
    assert [a.name for a in await rows(stack, DeskAgent)] == ["desk-1"]


async def test_code_expired_is_refused(
    stack: Stack, company: Company, tmp_path: Path, app_clock: ShiftableClock
) -> None:
    code = await pairing_code(stack, company.sam)
    app_clock.advance(timedelta(minutes=11))
    with pytest.raises(LinkError, match="expired"):
        await asyncio.to_thread(
            agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path), now=app_clock.now()
        )
    await refusal(stack, "desk.pair.refused", "code_expired")
    assert await rows(stack, DeskAgent) == []


async def test_code_issuer_cannot_confirm_their_own_agent(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    link = await paired(stack, company, tmp_path, confirm=False)
    card = await wait_channel(stack.slack, "Desk agent `desk-1` paired")
    await stack.slack.click(company.sam.slack_id, Action.DESK_AGENT_CONFIRM, message=card)
    assert "another approver must" in await ephemeral(
        stack, company.sam.slack_id, "You issued the pairing code"
    )
    await refusal(stack, "desk.agent.confirm.refused", "self_confirmation")
    [agent] = await rows(stack, DeskAgent)
    assert agent.state == "awaiting_confirmation"
    with pytest.raises(LinkPending):
        await asyncio.to_thread(link.poll_once)
    await refusal(stack, "desk.poll.refused", "not_confirmed")


# --- abuse: the link -------------------------------------------------------------------------------
@pytest.mark.keydesk_settings(agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=10.0)
async def test_revoked_agent_is_cut_off_even_mid_poll(stack: Stack, company: Company, tmp_path: Path) -> None:
    link = await paired(stack, company, tmp_path)
    waiting = asyncio.create_task(asyncio.to_thread(link.poll_once))
    await asyncio.sleep(0.3)
    await stack.slack.slash(company.alex.slack_id, "/keydesk", "desk revoke desk-1", HELPDESK_CHANNEL)
    with pytest.raises(LinkStopped, match="revoked"):
        await asyncio.wait_for(waiting, timeout=3)
    await wait_audit(stack, "desk.agent.revoked")
    await wait_channel(stack.slack, "was revoked by")
    with pytest.raises(LinkStopped, match="revoked"):
        await asyncio.to_thread(link.poll_once)
    await refusal(stack, "desk.poll.refused", "revoked")
    await wait_channel(stack.slack, "Revoked desk agent `desk-1` is still calling")


async def test_only_approvers_manage_desks(stack: Stack, company: Company, tmp_path: Path) -> None:
    await paired(stack, company, tmp_path)
    await stack.slack.slash(company.morgan.slack_id, "/keydesk", "desk revoke desk-1")
    assert "manage desk agents" in await ephemeral(stack, company.morgan.slack_id, "approvers group")
    await refusal(stack, "desk.agent.revoke.refused", "not_authorised")
    await stack.slack.slash(company.morgan.slack_id, "/keydesk", "desk inspect desk-1")
    await refusal(stack, "desk.inspect.refused", "not_authorised")
    await stack.slack.slash(company.morgan.slack_id, "/keydesk", "key KD-SOFT-0001")
    await refusal(stack, "key.show.refused", "not_authorised")
    [agent] = await rows(stack, DeskAgent)
    assert agent.state == "active" and await rows(stack, DeskJob) == []


async def test_socket_mode_serves_the_agent_routes(database_url: str, tmp_path: Path) -> None:
    stack = await open_stack(
        database_url,
        slack_app_token="xapp-sim-token",
        agent_signing_key_file=KEY_FILE,
        agent_long_poll_seconds=1.0,
    )
    try:
        company = seed_company(stack.slack, stack.graph)
        await stack.start_app()
        await eventually(lambda: stack.slack.socket_connected, "the socket connection")
        link = await paired(stack, company, tmp_path)
        await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect desk-1", HELPDESK_CHANNEL)
        await ephemeral(stack, company.sam.slack_id, "Sent to desk `desk-1`")
        assert await asyncio.to_thread(link.poll_once) is True
        await wait_dm(stack.slack, company.sam.slack_id, "inspected 1 key(s)")
    finally:
        await shut_down(stack)


async def test_replayed_result_is_refused(stack: Stack, company: Company, tmp_path: Path) -> None:
    link = await paired(stack, company, tmp_path)
    job = link.check_job(await delivered_job(stack, company, link))
    signed = link.result_envelope(job, ok=True, result={"keys": []})
    first = await asyncio.to_thread(link.post_result, job.id, signed)
    assert first.status_code == 200, first.text
    again = await asyncio.to_thread(link.post_result, job.id, signed)
    assert again.status_code == 401 and again.json()["error"] == "replayed"
    await refusal(stack, "desk.result.refused", "replayed")
    await wait_channel(stack.slack, "replayed a signed message of desk agent `desk-1`")


async def test_tampered_result_is_refused(stack: Stack, company: Company, tmp_path: Path) -> None:
    link = await paired(stack, company, tmp_path)
    job = link.check_job(await delivered_job(stack, company, link))
    signed = link.result_envelope(job, ok=True, result={"keys": []})
    forged = protocol.Signed(replace(signed.envelope, target=company.ada.entra_id), signed.signature)
    response = await asyncio.to_thread(link.post_result, job.id, forged)
    assert response.status_code == 401 and response.json()["error"] == "tampered"
    await refusal(stack, "desk.result.refused", "tampered")
    await wait_channel(stack.slack, "failed its signature check (tampered)")
    [row] = await rows(stack, DeskJob)
    assert row.state == "delivered"  # nothing was recorded from the forged result


async def test_expired_job_is_refused(
    stack: Stack, company: Company, tmp_path: Path, app_clock: ShiftableClock
) -> None:
    link = await paired(stack, company, tmp_path)
    job = link.check_job(await delivered_job(stack, company, link))
    app_clock.advance(timedelta(minutes=6))
    await wait_audit(stack, "desk.job.expired", timeout=5)
    await wait_dm(stack.slack, company.sam.slack_id, "did not answer the inspect job in time")
    link.clock = app_clock.now  # even with a fresh signature, the job itself is over
    response = await asyncio.to_thread(link.post_result, job.id, link.result_envelope(job, ok=True))
    assert response.status_code == 410 and response.json()["error"] == "expired"
    await refusal(stack, "desk.result.refused", "expired")
    [row] = await rows(stack, DeskJob)
    assert row.state == "expired"


async def test_result_from_the_wrong_agent_is_refused(stack: Stack, company: Company, tmp_path: Path) -> None:
    first = await paired(stack, company, tmp_path, "desk-1")
    second = await paired(stack, company, tmp_path, "desk-2")
    job = first.check_job(await delivered_job(stack, company, first))
    response = await asyncio.to_thread(second.post_result, job.id, second.result_envelope(job, ok=True))
    assert response.status_code == 403 and response.json()["error"] == "wrong_agent"
    await refusal(stack, "desk.result.refused", "wrong_agent")
    await wait_channel(stack.slack, "sent a result for a job of another desk")
    with pytest.raises(Exception, match="wrong_agent"):  # and the second agent refuses the first's job
        second.check_job(await delivered_job(stack, company, first))
