"""A prepared key's chain of custody after provisioning: hand-over, receipt, retirement.

    stock --(provisioned at a desk)--> provisioned --(hand-over: technician checked the person)-->
    handed_over --(the user clicks "I have my key" in the DM)--> active
    any state --(lost-key flow removed its passkey)--> lost ; any state --(approver)--> retired
    any state --(the manager said "this looks wrong" and keydesk removed its passkey)--> lost

"Active" means *the user confirmed receipt*, not "first sign-in seen": Entra's sign-in logs would
tell which passkey signed in, but reading them needs AuditLog.Read.All and a polling job, a price
this record is not worth. The user's own click is cheap, honest about what it proves, and a "I didn't
get this key" answer raises a security alert instead.

Every change is a compare-and-set on the key's state, an event with who did it, and an audit row.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.directory import DirectoryError
from bot.domain.text import clean, safe
from bot.logs import get_logger
from bot.services import approvals, identity, tap_common
from bot.services.runtime import Runtime
from bot.slack import desk_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import desk_repo, identity_repo, key_repo
from bot.store.models.key_inventory import KeyEvent, KeyRecord, KeyState

log = get_logger(__name__)


async def _load(rt: Runtime, key_id: str) -> tuple[KeyRecord | None, str]:
    async with rt.db.read() as session:
        record = await key_repo.by_id(session, key_id)
        agent = (
            await desk_repo.agent(session, record.desk_agent_id) if record and record.desk_agent_id else None
        )
    return record, agent.name if agent else "unknown desk"


async def _refused(rt: Runtime, action: str, actor: str, key_id: str, reason: str, message: str) -> str:
    await rt.audit.record(
        action, actor=actor, target=f"key:{key_id[:64]}", outcome="refused", details={"reason": reason}
    )
    return message


async def _approver_and_key(
    rt: Runtime, action: str, approver: str, key_id: str, doing: str
) -> tuple[tuple[str | None, KeyRecord, str] | None, str]:
    """The common opening of an approver's key action: they may act on keys, and the key exists.

    ((approver's Entra id, the key, its desk's name), "") when both hold, else (None, the refusal to
    show them, already audited under `action`). `doing` words the refusal ("hand keys over")."""
    actor = f"slack:{approver}"
    approver_entra_id, problem = await approvals.authorise_approver(rt, approver, None)
    if problem:
        refusal = problem.replace("decide pass requests", doing)
        return None, await _refused(rt, action, actor, key_id, "not_authorised", refusal)
    record, desk = await _load(rt, key_id)
    if record is None:
        message = "I can't find that key in the inventory."
        return None, await _refused(rt, action, actor, key_id, "unknown_key", message)
    return (approver_entra_id, record, desk), ""


async def _log(
    rt: Runtime,
    session: AsyncSession,
    record: KeyRecord,
    *,
    kind: str,
    action: str,
    actor: str,
    details: dict[str, Any],
    audit_details: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> None:
    """One change in a key's life, in the caller's transaction: the event `/keydesk key` shows, and the
    audit row (the key's serial, the event's details, and `audit_details` on top)."""
    await key_repo.add_event(
        session,
        KeyEvent(
            key_id=record.id, at=rt.clock.now(), kind=kind, actor=actor, desk_agent_id=None, details=details
        ),
    )
    await rt.audit.record(
        action,
        actor=actor,
        target=f"key:{record.id}",
        outcome=outcome,
        details={"serial": record.serial, **details, **(audit_details or {})},
        session=session,
    )


async def find_by_serial(rt: Runtime, serial: str) -> tuple[KeyRecord | None, str | None]:
    """The one key with this serial, or why there isn't one."""
    serial = clean(serial, 128)
    async with rt.db.read() as session:
        records = await key_repo.by_serial(session, serial)
    if not records:
        return None, f"No key with serial `{safe(serial, 128)}` is in the inventory."
    if len(records) > 1:
        return None, (
            f"{len(records)} key models share serial `{safe(serial, 128)}`: use the buttons on "
            f"`/keydesk key {safe(serial, 128)}` to pick the right one."
        )
    return records[0], None


# --- hand-over ----------------------------------------------------------------------------------
async def open_handover(rt: Runtime, slack_user_id: str, key_id: str, trigger_id: str) -> str | None:
    """Open the hand-over modal (rights are checked when it is submitted); a sentence when it can't."""
    record, desk = await _load(rt, key_id)
    if record is None:
        return "I can't find that key in the inventory."
    if record.state != KeyState.PROVISIONED:
        return (
            f"Key `{safe(record.serial or 'no serial', 128)}` is "
            f"{desk_views.STATE_TEXT.get(record.state, record.state)}: only a provisioned key is handed over."
        )
    try:
        await rt.slack.open_view(trigger_id, desk_views.handover_modal(record, desk))
    except SlackError:
        return "Slack didn't let me open the hand-over window; try again."
    return None


async def _user_slack_id(rt: Runtime, record: KeyRecord) -> str | None:
    if record.user_slack_id:
        return record.user_slack_id
    if not record.user_entra_id:
        return None
    async with rt.db.read() as session:
        link = await identity_repo.link_for_entra_user(session, record.user_entra_id)
    return link.slack_user_id if link else None


async def hand_over(rt: Runtime, key_id: str, technician: str, method: str, note: str) -> str:
    """The technician confirms they checked the person and gave them the key; the user is told."""
    action, actor = "key.handover.refused", f"slack:{technician}"
    if method not in desk_views.HANDOVER_CHECKS:
        return await _refused(rt, action, actor, key_id, "bad_method", "Choose how you verified the person.")
    found, refusal = await _approver_and_key(rt, action, technician, key_id, "hand keys over")
    if found is None:
        return refusal
    tech_entra, record, desk = found
    if record.user_entra_id and record.user_entra_id == tech_entra:
        return await _refused(
            rt,
            action,
            actor,
            key_id,
            "self_handover",
            "You can't hand a key over to yourself: another technician must.",
        )
    user = await _user_slack_id(rt, record)
    details = {"verified_by": method, "user": record.user_entra_id}
    if note:
        details["note"] = note
    async with rt.db.session() as session:
        won = await key_repo.transition(
            session, key_id, expected=[KeyState.PROVISIONED], to=KeyState.HANDED_OVER, user_slack_id=user
        )
        if won:
            await _log(
                rt,
                session,
                record,
                kind="handed_over",
                action="key.handed_over",
                actor=actor,
                details=details,
            )
    if not won:
        return await _refused(
            rt,
            action,
            actor,
            key_id,
            "stale",
            f"This key is {desk_views.STATE_TEXT.get(record.state, record.state)} now, not waiting for a hand-over.",
        )
    told = await _tell_user(rt, record, user, technician, desk)
    serial = safe(record.serial or "no serial", 128)
    if not told:
        return (
            f"Recorded: key `{serial}` is handed over. I could not DM its user (no Slack account linked "
            "to their work account): tell them to confirm with the helpdesk."
        )
    return (
        f"Recorded: key `{serial}` is handed over, and <@{user}> was asked in Slack to confirm they have it."
    )


async def _tell_user(rt: Runtime, record: KeyRecord, user: str | None, technician: str, desk: str) -> bool:
    if not user:
        await rt.audit.record(
            "key.handover.not_told",
            actor="keydesk",
            target=f"key:{record.id}",
            outcome="failed",
            details={"reason": "no_slack_account"},
        )
        return False
    text, blocks = desk_views.handover_dm(record, technician, desk, rt.settings.support_contact)
    try:
        await rt.slack.post_dm(user, text, blocks)
    except SlackError as exc:
        log.warning("key.handover.dm_failed", error=exc.code)
        await rt.audit.record(
            "key.handover.not_told",
            actor="keydesk",
            target=f"key:{record.id}",
            outcome="failed",
            details={"reason": exc.code},
        )
        return False
    await rt.audit.record(
        "key.handover.told", actor="keydesk", target=f"key:{record.id}", details={"user": user}
    )
    return True


# --- the user's answer -------------------------------------------------------------------------------
async def _is_keys_user(rt: Runtime, record: KeyRecord, clicker: str) -> bool:
    if record.user_slack_id:
        return record.user_slack_id == clicker
    try:
        who = await identity.resolve(rt, clicker)
    except (identity.IdentityRefused, DirectoryError):  # unresolvable: not shown to be the key's user
        return False
    return who.entra.id == record.user_entra_id


async def _answer(rt: Runtime, clicker: str, message: PostedMessage | None, text: str) -> None:
    """Replace the DM's buttons with the answer (or DM it when the message is unknown)."""
    if message is None:
        await tap_common.tell(rt, clicker, text)
        return
    plain, blocks = desk_views.receipt_answered(text)
    try:
        await rt.slack.update(message, plain, blocks)
    except SlackError as exc:
        log.warning("key.receipt.update_failed", error=exc.code)


async def received(rt: Runtime, key_id: str, clicker: str, message: PostedMessage | None) -> str | None:
    """ "I have my key": handed_over -> active. Returns a refusal sentence, or None when done."""
    action, actor = "key.receipt.refused", f"slack:{clicker}"
    record, _ = await _load(rt, key_id)
    if record is None or not await _is_keys_user(rt, record, clicker):
        return await _refused(
            rt, action, actor, key_id, "not_the_user", "Only the person the key was handed to can confirm it."
        )
    async with rt.db.session() as session:
        won = await key_repo.transition(session, key_id, expected=[KeyState.HANDED_OVER], to=KeyState.ACTIVE)
        if won:
            await _log(rt, session, record, kind="received", action="key.active", actor=actor, details={})
    if not won:
        return await _refused(
            rt,
            action,
            actor,
            key_id,
            "stale",
            f"This key is {desk_views.STATE_TEXT.get(record.state, record.state)}; nothing to confirm.",
        )
    await _answer(
        rt, clicker, message, ":white_check_mark: Thanks: recorded that you have your key. Keep it with you."
    )
    return None


async def not_received(rt: Runtime, key_id: str, clicker: str, message: PostedMessage | None) -> str | None:
    """ "I didn't get this key": a security alert (someone may hold a key that signs in as the user)."""
    action, actor = "key.receipt.refused", f"slack:{clicker}"
    record, desk = await _load(rt, key_id)
    if record is None or not await _is_keys_user(rt, record, clicker):
        return await _refused(
            rt, action, actor, key_id, "not_the_user", "Only the person the key was handed to can answer."
        )
    if record.state not in (KeyState.HANDED_OVER, KeyState.ACTIVE):
        return await _refused(
            rt,
            action,
            actor,
            key_id,
            "stale",
            f"This key is {desk_views.STATE_TEXT.get(record.state, record.state)}; the helpdesk already knows.",
        )
    async with rt.db.session() as session:
        await _log(
            rt,
            session,
            record,
            kind="disputed",
            action="key.handover.disputed",
            actor=actor,
            details={},
            audit_details={"method_id": record.entra_method_id},
            outcome="refused",
        )
    await tap_common.alert(
        rt,
        f"<@{clicker}> says they did *not* receive key `{safe(record.serial or 'no serial', 128)}` "
        f"({safe(record.model or 'unknown model', 200)}) recorded as handed over to them at desk "
        f"`{safe(desk, 64)}`. Its passkey is registered to them: remove it now "
        f"(`/keydesk lost <@{clicker}>`) and find out who has the key.",
        loud=True,
    )
    await _answer(
        rt,
        clicker,
        message,
        ":rotating_light: Thanks for telling us. The helpdesk was alerted and will remove that key from "
        "your account; nobody from IT will ask you for a code or your PIN.",
    )
    return None


# --- retirement --------------------------------------------------------------------------------------
async def retire(rt: Runtime, key_id: str, approver: str) -> str:
    """An approver takes a key out of service for good."""
    action, actor = "key.retire.refused", f"slack:{approver}"
    found, refusal = await _approver_and_key(rt, action, approver, key_id, "retire keys")
    if found is None:
        return refusal
    _, record, _ = found
    live = [s for s in KeyState if s is not KeyState.RETIRED]
    async with rt.db.session() as session:
        won = await key_repo.transition(session, key_id, expected=live, to=KeyState.RETIRED)
        if won:
            details = {"was": record.state, "user": record.user_entra_id, "method_id": record.entra_method_id}
            await _log(
                rt, session, record, kind="retired", action="key.retired", actor=actor, details=details
            )
    serial = safe(record.serial or "no serial", 128)
    if not won:
        return await _refused(rt, action, actor, key_id, "stale", f"Key `{serial}` is already retired.")
    message = f"Key `{serial}` is retired."
    if record.entra_method_id and record.state in (
        KeyState.PROVISIONED,
        KeyState.HANDED_OVER,
        KeyState.ACTIVE,
    ):
        message += (
            " Its passkey is still registered in Entra for its user; if the key is leaving service, remove it "
            "there too (`/keydesk lost @person`)."
        )
    return message


# --- a manager's "this looks wrong" --------------------------------------------------------------------
class Flag(StrEnum):
    MARKED = "marked"  # this call moved the key to lost
    ALREADY = "already"  # the key was lost already (flagged before, or the lost-key flow removed it)
    ABSENT = "absent"  # no inventory record holds this passkey any more (never recorded, reset, re-prepared)


async def flag_wrong(
    rt: Runtime, session: AsyncSession, key_id: str | None, method_id: str, *, actor: str, request_id: str
) -> Flag:
    """The manager said the key prepared under `request_id` looks wrong: its record becomes `lost` (its
    passkey is being removed, like the lost-key flow's; never handed over; a reset brings it back to stock).
    In the caller's transaction; the compare-and-set makes a second press find ALREADY."""
    record = await key_repo.by_id(session, key_id) if key_id else None
    if record is None or record.entra_method_id != method_id:
        return Flag.ABSENT
    live = [s for s in KeyState if s is not KeyState.LOST]
    if not await key_repo.transition(session, record.id, expected=live, to=KeyState.LOST):
        return Flag.ALREADY
    details = {
        "reason": "manager_flagged",
        "request_id": request_id,
        "method_id": method_id,
        "was": record.state,
    }
    await _log(
        rt,
        session,
        record,
        kind="flagged",
        action="key.flagged",
        actor=actor,
        details=details,
        audit_details={"user": record.user_entra_id},
    )
    return Flag.MARKED
