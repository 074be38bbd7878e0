"""The desk link's finishing touches: a revoked desk's name paired again, clock skew (tolerated up to two
minutes, beyond that a hint and a retry, never an exit), https-only servers, rate limits with 429 and
Retry-After, failed pairing guesses alerted, and a factory reset asked for in Slack."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from agent import protocol
from agent.cli import Desk, main
from agent.link import (
    AgentHome,
    InsecureServer,
    LinkClockSkew,
    LinkStopped,
    LinkThrottled,
    Pairing,
    check_server_url,
)
from agent.link import pair as agent_pair
from agent.softkey import SoftAuthenticator
from agent.softkey.demo import prepare_for_pickup
from bot.sandbox.company import Company
from bot.sandbox.slack_sim import SimMessage
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.services import desk_inventory
from bot.slack.ids import Action
from bot.store.models.desk import DeskAgent, DeskJob
from bot.store.models.key_inventory import KeyEvent, KeyRecord

from .helpers import audit, channel_messages, eventually, message_text, wait_audit, wait_channel, wait_dm
from .test_desk_link import KEY_FILE, ephemeral, paired, pairing_code, refusal, rows, soft_link

pytestmark = pytest.mark.keydesk_settings(agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=0.3)


# --- 1. a revoked desk's name can be paired again ----------------------------------------------
async def test_a_revoked_desks_name_can_be_paired_again(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    old = await paired(stack, company, tmp_path / "old")
    code = await pairing_code(stack, company.sam)
    with pytest.raises(Exception, match="already paired"):  # a live name stays taken
        await asyncio.to_thread(agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path / "clash"))
    await refusal(stack, "desk.pair.refused", "name_taken")

    await stack.slack.slash(company.alex.slack_id, "/keydesk", "desk revoke desk-1", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.agent.revoked")
    code = await pairing_code(stack, company.sam)  # same name, new key, new id
    await asyncio.to_thread(agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path / "new" / "desk-1"))

    def second_card() -> SimMessage | None:
        cards = [m for m in channel_messages(stack.slack) if "Desk agent `desk-1` paired" in message_text(m)]
        return cards[-1] if len(cards) == 2 else None

    card = await eventually(second_card, "the new desk's card")
    await stack.slack.click(company.alex.slack_id, Action.DESK_AGENT_CONFIRM, message=card)
    await ephemeral(stack, company.alex.slack_id, "Confirmed: desk agent `desk-1`", skip=1)
    new = soft_link(tmp_path / "new" / "desk-1")
    agents = {a.id: a for a in await rows(stack, DeskAgent)}
    assert sorted(a.state for a in agents.values()) == ["active", "revoked"]
    assert {a.name for a in agents.values()} == {"desk-1"}
    assert new.pairing.agent_id != old.pairing.agent_id
    assert agents[old.pairing.agent_id].state == "revoked"  # history kept, still revoked by id

    with pytest.raises(LinkStopped, match="revoked"):
        await asyncio.to_thread(old.poll_once)
    assert await asyncio.to_thread(new.poll_once) is False
    # the name now means the live desk: jobs go there, `desk list` shows both
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect desk-1", HELPDESK_CHANNEL)
    await ephemeral(stack, company.sam.slack_id, "Sent to desk `desk-1`")
    [job] = await rows(stack, DeskJob)
    assert job.agent_id == new.pairing.agent_id
    await stack.slack.slash(company.alex.slack_id, "/keydesk", "desk list", HELPDESK_CHANNEL)
    listed = await ephemeral(stack, company.alex.slack_id, "*Desk agents*")
    assert "`desk-1`: revoked" in listed and "`desk-1`: active" in listed


# --- 2. clock skew ------------------------------------------------------------------------------
async def test_skew_within_two_minutes_is_tolerated(stack: Stack, company: Company, tmp_path: Path) -> None:
    link = await paired(stack, company, tmp_path)
    for offset in (timedelta(seconds=90), timedelta(seconds=-90)):
        link.clock = lambda offset=offset: datetime.now(UTC) + offset  # type: ignore[misc]
        assert await asyncio.to_thread(link.poll_once) is False


async def test_a_skewed_agent_hints_and_retries_instead_of_exiting(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    link = await paired(stack, company, tmp_path)
    said: list[str] = []
    link.say = said.append
    link.clock = lambda: datetime.now(UTC) + timedelta(minutes=3)
    with pytest.raises(LinkClockSkew, match=r"clock is 1[78]\d s off \(ahead of the server\); sync it"):
        await asyncio.to_thread(link.poll_once)
    row = await wait_audit(stack, "desk.poll.refused")
    assert row.details["reason"] == "clock_skew"
    link.clock = lambda: datetime.now(UTC) - timedelta(minutes=4)
    with pytest.raises(LinkClockSkew, match=r"clock is 2[34]\d s off \(behind the server\)"):
        await asyncio.to_thread(link.poll_once)

    # `run` keeps going: hint, back off, try again; once the clock is synced it works
    stop = threading.Event()
    slept: list[float] = []
    polls = link.poll_once

    def poll_then_stop() -> bool:
        answer = polls()
        stop.set()  # only reached when a poll went through
        return answer

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            link.clock = lambda: datetime.now(UTC)  # the technician synced the clock

    link.poll_once = poll_then_stop  # type: ignore[method-assign]
    await asyncio.to_thread(link.run, stop, sleep)
    assert len(slept) == 2 and 0.8 <= slept[0] <= 1.2 and 1.6 <= slept[1] <= 2.4  # backoff
    hints = [s for s in said if "sync it" in s]
    assert len(hints) == 2 and all("Trying again in" in h for h in hints)
    # a skewed clock is the desk's problem, not an attack: audited, never a security alert
    channel = "\n".join(message_text(m) for m in stack.slack.messages(HELPDESK_CHANNEL))
    assert "failed its signature check" not in channel


async def test_a_job_that_looks_expired_to_a_skewed_agent_gives_the_hint(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    link = await paired(stack, company, tmp_path)
    said: list[str] = []
    link.say = said.append
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect desk-1", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.job.queued")
    header = link.auth_header()  # the poll itself is signed with the right time
    link.clock = lambda: datetime.now(UTC) + timedelta(minutes=8)  # so the job looks long expired here
    link.auth_header = lambda: header  # type: ignore[method-assign]
    with pytest.raises(LinkClockSkew, match=r"clock is 4[78]\d s off \(ahead of the server\)"):
        await asyncio.to_thread(link.poll_once)
    assert any("Nothing was done" in s for s in said)


async def test_pairing_with_a_skewed_clock_says_so(stack: Stack, company: Company, tmp_path: Path) -> None:
    code = await pairing_code(stack, company.sam)
    ahead = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(LinkClockSkew, match=r"clock is (299|300) s off \(ahead of the server\).*pair again"):
        await asyncio.to_thread(agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path), now=ahead)
    await refusal(stack, "desk.pair.refused", "clock_skew")
    assert not (tmp_path / "agent.key").exists()


# --- 3. https only, except this very machine ----------------------------------------------------
def test_server_urls_must_be_https_unless_loopback() -> None:
    for good in (
        "https://keydesk.example.com",
        "http://127.0.0.1:8080/",
        "http://localhost:3000",
        "http://[::1]:80",
    ):
        assert check_server_url(good) == good.rstrip("/")
    for bad in (
        "http://keydesk.example.com",
        "http://10.0.0.5:8080",
        "http://127.0.0.1.nip.io",
        "ftp://x",
        "keydesk",
    ):
        with pytest.raises(InsecureServer):
            check_server_url(bad)


async def test_pair_and_run_refuse_plain_http_to_another_machine(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    screen = io.StringIO()
    desk = Desk(console=Console(file=screen, width=200))
    home = tmp_path / "cli"
    code = await pairing_code(stack, company.sam)
    argv = ["pair", "--server", "http://keydesk.example.com", "--code", code, "--home", str(home)]
    assert await asyncio.to_thread(main, argv, desk) == 1
    assert "Refusing http://keydesk.example.com" in screen.getvalue() and "https://" in screen.getvalue()
    assert not home.exists()  # no key made, nothing sent

    # a link.json pointing at plain http elsewhere (edited by hand, or copied) is refused by run too
    AgentHome(home).save(
        protocol.new_private_key(),
        Pairing("http://keydesk.example.com", "agent-x", "desk-x", "active", "A" * 43),
    )
    assert await asyncio.to_thread(main, ["run", "--soft", "--once", "--home", str(home)], desk) == 1
    assert screen.getvalue().count("Refusing http://keydesk.example.com") == 2
    assert await rows(stack, DeskAgent) == []


# --- 4. rate limits -----------------------------------------------------------------------------
@pytest.mark.keydesk_settings(
    agent_signing_key_file=KEY_FILE,
    agent_pair_attempts_per_source=4,
    agent_pair_failure_alert_threshold=3,
)
async def test_pairing_guesses_are_alerted_and_then_throttled(stack: Stack, tmp_path: Path) -> None:
    for n in range(4):
        with pytest.raises(Exception, match="not valid"):
            await asyncio.to_thread(
                agent_pair, stack.url, f"AAAA-BBBB-CCCC-DDD{n + 2}", "desk-1", AgentHome(tmp_path / str(n))
            )
    await refusal(stack, "desk.pair.refused", "unknown_code")
    alert = await wait_channel(stack.slack, "Someone may be guessing pairing codes")
    assert "3 desk pairing attempts" in message_text(alert) and "127.0.0.1" in message_text(alert)
    guessing = await wait_audit(stack, "desk.pair.guessing")
    assert guessing.details["failures"] == 3
    with pytest.raises(LinkThrottled, match="Too many requests") as caught:
        await asyncio.to_thread(
            agent_pair, stack.url, "AAAA-BBBB-CCCC-DDDD", "desk-1", AgentHome(tmp_path / "x")
        )
    assert 500 <= caught.value.retry_after <= 600
    response = await asyncio.to_thread(httpx.post, f"{stack.url}/agent/v1/pair", json={})
    assert response.status_code == 429 and 500 <= int(response.headers["Retry-After"]) <= 600
    assert response.json()["error"] == "rate_limited"
    limited = [e for e in await audit(stack) if e.action == "desk.rate_limited"]
    assert len(limited) == 1 and limited[0].details["scope"] == "pairing_source"  # audited once a window
    assert await rows(stack, DeskAgent) == []


@pytest.mark.keydesk_settings(agent_signing_key_file=KEY_FILE, agent_pair_attempts_per_code=2)
async def test_one_code_is_tried_a_few_times_only(stack: Stack, company: Company, tmp_path: Path) -> None:
    code = await pairing_code(stack, company.sam)
    await asyncio.to_thread(agent_pair, stack.url, code, "desk-1", AgentHome(tmp_path / "a"))
    with pytest.raises(Exception, match="already used"):
        await asyncio.to_thread(agent_pair, stack.url, code, "desk-2", AgentHome(tmp_path / "b"))
    with pytest.raises(LinkThrottled):
        await asyncio.to_thread(agent_pair, stack.url, code, "desk-3", AgentHome(tmp_path / "c"))
    row = await wait_audit(stack, "desk.rate_limited")
    assert row.details["scope"] == "pairing_code" and code not in json.dumps(row.details) + str(row.target)


@pytest.mark.keydesk_settings(
    agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=0.2, agent_polls_per_minute=2
)
async def test_an_agent_polling_too_often_is_told_to_wait_and_does(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    link = await paired(stack, company, tmp_path)
    assert await asyncio.to_thread(link.poll_once) is False
    assert await asyncio.to_thread(link.poll_once) is False
    with pytest.raises(LinkThrottled) as caught:
        await asyncio.to_thread(link.poll_once)
    assert 1 <= caught.value.retry_after <= 60
    row = await wait_audit(stack, "desk.rate_limited")
    assert row.details["scope"] == "agent_polls" and row.actor == "agent:desk-1"

    stop, slept = threading.Event(), []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        stop.set()

    await asyncio.to_thread(link.run, stop, sleep)
    assert len(slept) == 1 and slept[0] >= caught.value.retry_after - 1  # Retry-After honoured, not 1 s


# --- 5. a reset asked for in Slack ---------------------------------------------------------------
async def test_reset_from_slack_is_guided_at_the_desk_and_reported_back(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await paired(stack, company, tmp_path)
    key = SoftAuthenticator()
    prepare_for_pickup(key)
    link = soft_link(tmp_path / "desk-1", key)
    said: list[str] = []
    link.say = said.append
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk reset desk-1", HELPDESK_CHANNEL)
    assert "follows the steps on its screen" in await ephemeral(stack, company.sam.slack_id, "Reset sent")
    requested = await wait_audit(stack, "desk.reset.requested")
    assert requested.actor == f"slack:{company.sam.slack_id}"
    assert await asyncio.to_thread(link.poll_once) is True
    assert any("Reset requested in Slack by" in s and "erases every passkey" in s for s in said)
    assert not key.credentials and not key.pin.is_set
    await wait_dm(stack.slack, company.sam.slack_id, "Desk `desk-1` reset the key")
    finished = await wait_audit(stack, "desk.reset.finished")
    assert finished.outcome == "ok"


async def test_reset_refused_for_non_approvers_and_unknown_desks(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await paired(stack, company, tmp_path)
    await stack.slack.slash(company.morgan.slack_id, "/keydesk", "desk reset desk-1")
    assert "use the desk tools" in await ephemeral(stack, company.morgan.slack_id, "approvers group")
    await refusal(stack, "desk.reset.refused", "not_authorised")
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk reset desk-9", HELPDESK_CHANNEL)
    await ephemeral(stack, company.sam.slack_id, "There is no desk agent named `desk-9`")
    await refusal(stack, "desk.reset.refused", "unknown_desk")
    assert await rows(stack, DeskJob) == []


async def test_a_reset_returns_the_key_to_stock_and_warns_about_its_entra_passkey(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await paired(stack, company, tmp_path)
    key = SoftAuthenticator()
    link = soft_link(tmp_path / "desk-1", key)
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect desk-1", HELPDESK_CHANNEL)
    assert await asyncio.to_thread(link.poll_once) is True
    await wait_dm(stack.slack, company.sam.slack_id, "inspected 1 key(s)")
    [seen] = await rows(stack, KeyRecord)
    rt = stack.keydesk.rt
    report = {"aaguid": seen.aaguid, "serial_number": seen.serial}
    await desk_inventory.record_provisioned(
        rt,
        agent_id=seen.desk_agent_id or "",
        report=report,
        target_entra_id=company.ada.entra_id,
        target_slack_id=company.ada.slack_id,
        method_id="method-ada-1",
        actor=company.sam.slack_id,
    )
    prepare_for_pickup(key)

    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk reset desk-1", HELPDESK_CHANNEL)
    assert await asyncio.to_thread(link.poll_once) is True

    dm = message_text(await wait_dm(stack.slack, company.sam.slack_id, "Desk `desk-1` reset the key"))
    assert "method-ada-1" in dm and "/keydesk lost @person" in dm  # Entra may still list the passkey
    [record] = await rows(stack, KeyRecord)
    assert (record.state, record.user_entra_id, record.entra_method_id) == ("stock", None, None)
    events = [e for e in await rows(stack, KeyEvent) if e.key_id == record.id]
    reset = events[-1]
    assert (reset.kind, reset.actor) == ("reset", f"slack:{company.sam.slack_id}")
    assert reset.details["previous_state"] == "provisioned" and reset.details["user"] == company.ada.entra_id
    assert (await wait_audit(stack, "key.inventory.reset")).details["method_id"] == "method-ada-1"


async def test_a_reset_of_a_key_in_stock_only_records_it(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await paired(stack, company, tmp_path)
    key = SoftAuthenticator()
    link = soft_link(tmp_path / "desk-1", key)
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect desk-1", HELPDESK_CHANNEL)
    assert await asyncio.to_thread(link.poll_once) is True
    await wait_dm(stack.slack, company.sam.slack_id, "inspected 1 key(s)")
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk reset desk-1", HELPDESK_CHANNEL)
    assert await asyncio.to_thread(link.poll_once) is True
    dm = message_text(await wait_dm(stack.slack, company.sam.slack_id, "Desk `desk-1` reset the key"))
    assert "Entra may still list it" not in dm
    [record] = await rows(stack, KeyRecord)
    assert record.state == "stock"
    assert [e.kind for e in await rows(stack, KeyEvent)] == ["inspected", "reset"]
