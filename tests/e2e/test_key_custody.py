"""The key inventory's chain of custody end to end: provisioned (the call provisioning makes), handed over
at the desk after an identity check (the user is told by DM), active once the user confirms receipt,
lost through the lost-key flow, retired by an approver, and the whole history on `/keydesk key SERIAL`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sandbox.company import Company, Person
from bot.sandbox.graph_sim import MethodKind
from bot.sandbox.slack_sim import SimView
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.services import desk_inventory
from bot.slack.ids import Action, ViewId
from bot.store.models.desk import DeskAgent
from bot.store.models.key_inventory import KeyEvent, KeyRecord

from .helpers import audit, eventually, message_text, view_text, wait_audit, wait_channel, wait_dm
from .test_desk_link import KEY_FILE, ephemeral, paired, refusal, rows
from .test_lost_key import method_id, report

pytestmark = pytest.mark.keydesk_settings(agent_signing_key_file=KEY_FILE, agent_long_poll_seconds=0.3)

SERIAL = "KD-SOFT-0001"
AAGUID = "a8e2b9a4-1d3c-4f5e-9a7b-2c6d8e0f1a3b"
REPORT = {"aaguid": AAGUID, "serial_number": SERIAL, "model": "keydesk soft key", "firmware": "1.2.3"}


async def provisioned(
    stack: Stack, company: Company, tmp: Path, person: Person, method: str = "method-1"
) -> KeyRecord:
    """A desk, its key seen by an inspect, then provisioned for `person` (as the provisioning flow does)."""
    link = await paired(stack, company, tmp)
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "desk inspect desk-1", HELPDESK_CHANNEL)
    await wait_audit(stack, "desk.job.queued")
    assert await asyncio.to_thread(link.poll_once) is True
    await wait_audit(stack, "key.inventory.seen")
    [agent] = await rows(stack, DeskAgent)
    [seen] = await rows(stack, KeyRecord)
    record = await desk_inventory.record_provisioned(
        stack.keydesk.rt,
        agent_id=agent.id,
        report={**REPORT, "aaguid": seen.aaguid},
        target_entra_id=person.entra_id,
        target_slack_id=person.slack_id,
        method_id=method,
        actor=company.sam.slack_id,
    )
    assert record is not None and record.id == seen.id  # the same key: one record, not two
    return record


async def key_events(stack: Stack) -> list[tuple[str, str]]:
    async with stack.keydesk.rt.db.read() as session:
        found = (await session.execute(select(KeyEvent).order_by(KeyEvent.id))).scalars().all()
    return [(e.kind, e.actor) for e in found]


async def state_of(stack: Stack) -> str:
    [record] = await rows(stack, KeyRecord)
    return record.state


async def handover_modal(stack: Stack, user_id: str) -> SimView:
    def probe() -> SimView | None:
        views = stack.slack.open_views(user_id)
        return views[-1] if views and views[-1].callback_id == ViewId.KEY_HANDOVER else None

    return await eventually(probe, "the hand-over modal", 3.0)


async def result_of(stack: Stack, user_id: str, contains: str) -> str:
    def probe() -> str | None:
        views = stack.slack.open_views(user_id)
        text = view_text(views[-1]) if views else ""
        return text if contains in text else None

    return await eventually(probe, f"the modal saying {contains!r}", 3.0)


# --- provisioned --------------------------------------------------------------------------------
async def test_record_provisioned_binds_the_key_to_the_user(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    record = await provisioned(stack, company, tmp_path, company.ada)
    [row] = await rows(stack, KeyRecord)
    assert (row.state, row.user_entra_id, row.user_slack_id, row.entra_method_id) == (
        "provisioned",
        company.ada.entra_id,
        company.ada.slack_id,
        "method-1",
    )
    assert (row.serial, row.model, row.firmware) == (SERIAL, "keydesk soft key", "1.2.3")
    assert await key_events(stack) == [
        ("inspected", f"slack:{company.sam.slack_id}"),
        ("provisioned", f"slack:{company.sam.slack_id}"),
    ]
    audited = await wait_audit(stack, "key.inventory.provisioned")
    assert audited.details["user"] == company.ada.entra_id and audited.target == f"key:{record.id}"
    again = await desk_inventory.record_provisioned(  # a retried report records nothing twice
        stack.keydesk.rt,
        agent_id=row.desk_agent_id or "",
        report={**REPORT, "aaguid": row.aaguid},
        target_entra_id=company.ada.entra_id,
        target_slack_id=company.ada.slack_id,
        method_id="method-1",
        actor=f"slack:{company.sam.slack_id}",
    )
    assert again is not None and again.id == record.id and len(await key_events(stack)) == 2
    none = await desk_inventory.record_provisioned(
        stack.keydesk.rt,
        agent_id="x",
        report={},
        target_entra_id="e",
        target_slack_id=None,
        method_id=None,
        actor="system",
    )
    assert none is None


# --- hand-over ----------------------------------------------------------------------------------
async def test_handover_records_the_identity_check_and_tells_the_user(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await provisioned(stack, company, tmp_path, company.ada)
    sam, ada = company.sam.slack_id, company.ada.slack_id
    await stack.slack.slash(sam, "/keydesk", f"key {SERIAL} handover", HELPDESK_CHANNEL)
    modal = await handover_modal(stack, sam)
    assert SERIAL in view_text(modal) and f"<@{ada}>" in view_text(modal)
    await stack.slack.submit_view(
        sam, modal.id, {"verification": {"method": "photo_id"}, "note": {"text": "at desk 1"}}
    )
    assert f"<@{ada}> was asked in Slack" in await result_of(stack, sam, "Recorded")
    assert await state_of(stack) == "handed_over"
    row = await wait_audit(stack, "key.handed_over")
    assert row.actor == f"slack:{sam}" and row.details["verified_by"] == "photo_id"

    dm = await wait_dm(stack.slack, ada, "handed you a security key")
    assert SERIAL in message_text(dm) and f"<@{sam}>" in message_text(dm)
    await stack.slack.click(company.morgan.slack_id, Action.KEY_RECEIVED, message=dm, forge=True)
    await refusal(stack, "key.receipt.refused", "not_the_user")
    assert await state_of(stack) == "handed_over"

    await stack.slack.click(ada, Action.KEY_RECEIVED, message=dm)
    await wait_audit(stack, "key.active")
    assert await state_of(stack) == "active"
    await wait_dm(stack.slack, ada, "recorded that you have your key")
    kinds = [k for k, _ in await key_events(stack)]
    assert kinds == ["inspected", "provisioned", "handed_over", "received"]

    # the history shows who did what, and when
    await stack.slack.slash(company.alex.slack_id, "/keydesk", f"key {SERIAL}", HELPDESK_CHANNEL)
    history = await ephemeral(stack, company.alex.slack_id, "*History*")
    lines = [line for line in history[history.index("*History*") :].splitlines() if line.startswith("• ")]
    assert [line.split(": ", 1)[1].split(" by ")[0] for line in lines][:4] == [  # text, then blocks
        "inspected at `desk-1`",
        f"provisioned for <@{ada}> at `desk-1`",
        "handed over",
        "receipt confirmed",
    ]
    assert f"by <@{sam}> · identity checked: Government photo ID" in history
    assert f"receipt confirmed by <@{ada}>" in history and "in use (receipt confirmed)" in history


async def test_handover_from_the_key_card_button(stack: Stack, company: Company, tmp_path: Path) -> None:
    await provisioned(stack, company, tmp_path, company.ada)
    sam = company.sam.slack_id
    await stack.slack.slash(sam, "/keydesk", f"key {SERIAL}", HELPDESK_CHANNEL)

    def card() -> object:
        hits = [m for m in stack.slack.ephemerals(user_id=sam) if "*History*" in message_text(m)]
        return hits[-1] if hits else None

    message = await eventually(card, "the key card")
    await stack.slack.click(sam, Action.KEY_HANDOVER, message=message)  # type: ignore[arg-type]
    modal = await handover_modal(stack, sam)
    await stack.slack.submit_view(sam, modal.id, {"verification": {"method": "badge_photo"}})
    await result_of(stack, sam, "Recorded")
    assert await state_of(stack) == "handed_over"
    # handing it over twice is refused: the key is no longer waiting
    await stack.slack.slash(sam, "/keydesk", f"key {SERIAL} handover", HELPDESK_CHANNEL)
    await ephemeral(stack, sam, "only a provisioned key is handed over")


async def test_handover_refusals(stack: Stack, company: Company, tmp_path: Path) -> None:
    record = await provisioned(stack, company, tmp_path, company.sam)  # a key for an approver himself
    await stack.slack.slash(company.sam.slack_id, "/keydesk", f"key {SERIAL} handover", HELPDESK_CHANNEL)
    modal = await handover_modal(stack, company.sam.slack_id)
    forged = await stack.slack.submit_view(company.sam.slack_id, modal.id, {}, forge=True)  # no check chosen
    assert "Choose how you verified" in str(forged.body)
    await stack.slack.submit_view(company.sam.slack_id, modal.id, {"verification": {"method": "photo_id"}})
    assert "to yourself" in await result_of(stack, company.sam.slack_id, "yourself")
    await refusal(stack, "key.handover.refused", "self_handover")

    await stack.slack.slash(company.morgan.slack_id, "/keydesk", f"key {SERIAL} handover")
    modal = await handover_modal(stack, company.morgan.slack_id)
    await stack.slack.submit_view(company.morgan.slack_id, modal.id, {"verification": {"method": "photo_id"}})
    assert "hand keys over" in await result_of(stack, company.morgan.slack_id, "approvers group")
    await refusal(stack, "key.handover.refused", "not_authorised")
    assert await state_of(stack) == "provisioned" and record.state == "provisioned"


async def test_a_user_who_did_not_get_the_key_raises_an_alert(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await provisioned(stack, company, tmp_path, company.ada)
    sam, ada = company.sam.slack_id, company.ada.slack_id
    await stack.slack.slash(sam, "/keydesk", f"key {SERIAL} handover", HELPDESK_CHANNEL)
    modal = await handover_modal(stack, sam)
    await stack.slack.submit_view(sam, modal.id, {"verification": {"method": "verified_id"}})
    dm = await wait_dm(stack.slack, ada, "handed you a security key")
    await stack.slack.click(ada, Action.KEY_NOT_RECEIVED, message=dm)
    alert = await wait_channel(stack.slack, "did *not* receive key")
    assert "Security alert" in message_text(alert) and f"/keydesk lost <@{ada}>" in message_text(alert)
    await wait_audit(stack, "key.handover.disputed")
    await wait_dm(stack.slack, ada, "The helpdesk was alerted")
    assert [k for k, _ in await key_events(stack)][-1] == "disputed"


# --- lost ---------------------------------------------------------------------------------------
async def test_the_lost_key_flow_marks_the_users_key_lost(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    morgan = company.morgan
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)
    await provisioned(stack, company, tmp_path, morgan, method=yubikey)
    await report(stack, morgan, "stolen", keys=[yubikey])
    row = await wait_audit(stack, "key.inventory.lost", timeout=5)
    assert row.details["reason"] == "stolen" and row.details["method_id"] == yubikey
    assert await state_of(stack) == "lost"
    assert (await key_events(stack))[-1] == ("lost", f"slack:{morgan.slack_id}")
    # idempotent: a re-run of the steps marks nothing again
    again = await desk_inventory.mark_lost(
        stack.keydesk.rt, entra_user_id=morgan.entra_id, method_ids=[yubikey], actor="system", reason="lost"
    )
    assert again == []
    await stack.slack.slash(company.sam.slack_id, "/keydesk", f"key {SERIAL}", HELPDESK_CHANNEL)
    assert "lost or stolen" in await ephemeral(stack, company.sam.slack_id, "*History*")


async def test_mark_lost_touches_only_the_named_methods_of_that_user(
    stack: Stack, company: Company, tmp_path: Path
) -> None:
    await provisioned(stack, company, tmp_path, company.ada, method="ada-key")
    rt = stack.keydesk.rt
    assert (
        await desk_inventory.mark_lost(
            rt, entra_user_id=company.ada.entra_id, method_ids=["other"], actor="x:y", reason="lost"
        )
        == []
    )
    assert (
        await desk_inventory.mark_lost(
            rt, entra_user_id=company.morgan.entra_id, method_ids=["ada-key"], actor="x:y", reason="lost"
        )
        == []
    )
    assert await state_of(stack) == "provisioned"


# --- retired ------------------------------------------------------------------------------------
async def test_retire_is_for_approvers_and_audited(stack: Stack, company: Company, tmp_path: Path) -> None:
    await provisioned(stack, company, tmp_path, company.ada)
    await stack.slack.slash(company.morgan.slack_id, "/keydesk", f"key {SERIAL} retire")
    assert "retire keys" in await ephemeral(stack, company.morgan.slack_id, "approvers group")
    await refusal(stack, "key.retire.refused", "not_authorised")
    assert await state_of(stack) == "provisioned"

    await stack.slack.slash(company.sam.slack_id, "/keydesk", f"key {SERIAL} retire", HELPDESK_CHANNEL)
    message = await ephemeral(stack, company.sam.slack_id, "is retired")
    assert "still registered in Entra" in message
    row = await wait_audit(stack, "key.retired")
    assert row.actor == f"slack:{company.sam.slack_id}" and row.details["was"] == "provisioned"
    assert await state_of(stack) == "retired"
    await stack.slack.slash(company.sam.slack_id, "/keydesk", f"key {SERIAL} retire", HELPDESK_CHANNEL)
    await ephemeral(stack, company.sam.slack_id, "already retired")
    await refusal(stack, "key.retire.refused", "stale")
    await stack.slack.slash(company.alex.slack_id, "/keydesk", f"key {SERIAL}", HELPDESK_CHANNEL)
    history = await ephemeral(stack, company.alex.slack_id, "*History*")
    assert f"retired by <@{company.sam.slack_id}>" in history and "state *retired*" in history
    assert [e.action for e in await audit(stack) if e.action.startswith("key.")].count("key.retired") == 1


async def test_unknown_serials_and_bad_usage(stack: Stack, company: Company) -> None:
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "key NOPE-1 handover", HELPDESK_CHANNEL)
    await ephemeral(stack, company.sam.slack_id, "No key with serial `NOPE-1`")
    await stack.slack.slash(company.sam.slack_id, "/keydesk", "key NOPE-1 frobnicate", HELPDESK_CHANNEL)
    assert await rows(stack, KeyRecord) == []
