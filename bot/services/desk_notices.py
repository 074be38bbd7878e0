"""A key prepared in someone's name is a credential issued (IDV-6 / G8): their manager is told in Slack,
with a "This looks wrong" button, and their own mailbox by mail. The button (only the manager's) removes
the key's passkey from Entra, ends the person's sessions, marks the key lost in the inventory so it is
not handed over, destroys a pickup PIN still waiting, and raises a security alert.

Telling never undoes the provisioning: a failure is logged and shows in the `desk.notified` row. The
stop is claimed once, by the request's compare-and-set to REVOKED (the key record, the PIN and the
claim's audit row change in the same transaction), so a second press does nothing twice. No PIN reaches
any of this.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.deadlines import Deadline, RetryLater
from bot.directory import AuthMethod, DirectoryError, MethodKind
from bot.domain.tap_request import RequestKind, RequestState
from bot.domain.text import safe
from bot.logs import get_logger
from bot.services import desk_common, desk_custody, pin_seal, tap_common
from bot.services.desk_custody import Flag
from bot.services.runtime import Runtime
from bot.slack import desk_notice_views as views
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import tap_repo
from bot.store.models.desk_provisioning import DeskProvisioning, PinMode, SealedPin
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)

STARTED = "desk.looks_wrong.started"
RETRY_DEADLINE = "desk.looks_wrong.retry"
RETRY_EVERY = timedelta(minutes=1)
GIVE_UP_AFTER = timedelta(hours=24)


# --- telling ---------------------------------------------------------------------------------------
async def announce(rt: Runtime, request_id: str) -> None:
    """After the key was registered and the request completed. Never raises."""
    try:
        await _announce(rt, request_id)
    except Exception as exc:  # the key is registered and on record; a notice must not take that back
        log.error("desk.notify.failed", request=request_id, error=type(exc).__name__)


async def _announce(rt: Runtime, request_id: str) -> None:
    request = await tap_common.load(rt, request_id)
    prov = await desk_common.provisioning(rt, request_id)
    if request is None or prov is None:
        return
    key, desk = views.key_words(prov.key_report), _desk(request)
    manager = False
    if request.manager_slack_id:
        text, blocks = views.manager_notice(
            request,
            key=key,
            desk=desk,
            technician=prov.technician_slack_id,
            at=prov.updated_at,
            pickup=prov.pin_mode == PinMode.PICKUP,
        )
        try:
            await rt.slack.post_dm(request.manager_slack_id, text, blocks)
            manager = True
        except SlackError as exc:
            log.warning("desk.notify.manager_failed", request=request_id, error=exc.code)
    technician = await _name(rt, prov.technician_slack_id)
    subject, body = views.prepared_mail(key, desk, technician, prov.updated_at, rt.settings.support_contact)
    mailed = await tap_common.mail_person(rt, request, subject, body, event="desk.notify.mail_failed")
    if not (manager or mailed):  # G8: the person's own DM alone is one notice, not two
        await tap_common.alert(
            rt,
            f"Only <@{request.target_slack_id}> was told about the key prepared in their name: "
            + (
                "their manager isn't reachable in Slack"
                if not request.manager_slack_id
                else "the manager's DM failed"
            )
            + (
                " and no mail went out"
                if rt.settings.notify_mailbox
                else " and KEYDESK_NOTIFY_MAILBOX is not set"
            )
            + ". Tell their manager yourself.",
            thread_of=request,
        )
    await rt.audit.record(
        "desk.notified",
        actor="system",
        target=f"entra:{request.target_entra_id}",
        details={"request_id": request_id, "manager": manager, "email": mailed},
    )


async def _name(rt: Runtime, slack_id: str) -> str:
    try:
        return safe((await rt.slack.user(slack_id)).display, 80) or "a helpdesk technician"
    except SlackError:
        return "a helpdesk technician"


# --- "This looks wrong" ----------------------------------------------------------------------------
async def looks_wrong(rt: Runtime, request_id: str, clicker: str, notice: PostedMessage | None) -> str:
    """The manager stops the key. Returns what to tell the clicker (refusals are audited)."""
    actor = f"slack:{clicker}"
    request = await tap_common.load(rt, request_id)
    if request is None or request.kind != RequestKind.DESK_KEY or clicker != request.manager_slack_id:
        return await _refused(
            rt, actor, request_id, "not_the_manager", "Only the person's manager can use this button."
        )
    already = (
        "This key was already stopped: its passkey was removed from their account and the helpdesk knows."
    )
    if request.state == RequestState.REVOKED:
        return await _refused(rt, actor, request_id, "already_stopped", already)
    prov = await desk_common.provisioning(rt, request_id)
    if (
        prov is None
        or not prov.method_id
        or request.state not in (RequestState.ISSUED, RequestState.COMPLETED)
    ):
        return await _refused(
            rt,
            actor,
            request_id,
            "not_registered",
            "No key was registered for this request: nothing to stop.",
        )
    pin_row = await pin_seal.load(rt, request_id)
    pin, flag = False, Flag.ABSENT
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session,
            request_id,
            expected=[RequestState.ISSUED, RequestState.COMPLETED],
            to=RequestState.REVOKED,
            closed_at=rt.clock.now(),
        )
        if won:
            flag = await desk_custody.flag_wrong(
                rt, session, prov.key_record_id, prov.method_id, actor=actor, request_id=request_id
            )
            pin = await pin_seal.destroy(rt, request_id, reason="looks_wrong", actor=actor, session=session)
            await rt.audit.record(
                STARTED,
                actor=actor,
                target=f"entra:{request.target_entra_id}",
                details={
                    "request_id": request_id,
                    "method_id": prov.method_id,
                    "key": flag.value,
                    "pin_destroyed": pin,
                },
                session=session,
            )
    if not won:
        return await _refused(rt, actor, request_id, "already_stopped", already)
    await tap_common.refresh(rt, request_id)
    removed, revoked = await _stop_in_entra(rt, request.target_entra_id, prov.method_id)
    await rt.audit.record(
        "desk.looks_wrong",
        actor=actor,
        target=f"entra:{request.target_entra_id}",
        outcome="ok" if removed is not None and revoked else "failed",
        details={
            "request_id": request_id,
            "method_id": prov.method_id,
            "passkey_removed": removed is not None,
            "sessions_revoked": revoked,
            "key": flag.value,
            "pin_destroyed": pin,
        },
    )
    if removed is None or not revoked:
        await rt.deadlines.schedule(
            RETRY_DEADLINE,
            rt.clock.now() + RETRY_EVERY,
            {"request_id": request_id, "method_id": prov.method_id, "since": rt.clock.now().isoformat()},
            key=f"desk-stop:{request_id}",
            replace=True,
        )
    reply = await _tell_everyone(rt, request, prov, clicker, removed, revoked, flag, pin, pin_row)
    if notice is not None:
        text, blocks = views.manager_flagged(reply)
        try:
            await rt.slack.update(notice, text, blocks)
        except SlackError as exc:
            log.warning("desk.looks_wrong.notice_update_failed", error=exc.code)
    return reply


async def finish_stop(rt: Runtime, deadline: Deadline) -> None:
    """Deadline after a stop Entra didn't fully take: remove the passkey and end the sessions again
    (both idempotent; ending them after the removal is what counts) until done or 24 h have passed."""
    request_id, method_id = str(deadline.payload["request_id"]), str(deadline.payload["method_id"])
    request = await tap_common.load(rt, request_id)
    if request is None:
        return
    removed, revoked = await _stop_in_entra(rt, request.target_entra_id, method_id)
    done = removed is not None and revoked
    since = datetime.fromisoformat(str(deadline.payload["since"]))
    if not done and rt.clock.now() - since < GIVE_UP_AFTER:
        raise RetryLater(RETRY_EVERY.total_seconds(), "entra did not answer")
    await rt.audit.record(
        "desk.looks_wrong.finished",
        actor="system",
        target=f"entra:{request.target_entra_id}",
        outcome="ok" if done else "failed",
        details={"request_id": request_id, "method_id": method_id, "passkey_removed": removed is not None},
    )
    if done:
        text = (
            f"keydesk finished stopping the key prepared for <@{request.target_slack_id}>: its passkey is off "
            "their account and their sign-in sessions were ended again. Nothing is left to do by hand."
        )
    else:
        text = (
            f"keydesk gave up after 24 h: Microsoft Entra still didn't take the stop of the key prepared for "
            f"<@{request.target_slack_id}>. Remove passkey `{safe(method_id, 200)}` from their account and "
            "revoke their sessions by hand now."
        )
    await tap_common.alert(rt, text, loud=not done, thread_of=request)


def register(rt: Runtime) -> None:
    """The retry of a stop Entra didn't take; called once at startup (bot/services/timers.py)."""

    async def handler(deadline: Deadline) -> None:
        await finish_stop(rt, deadline)

    rt.deadlines.register(RETRY_DEADLINE, handler)


async def _stop_in_entra(rt: Runtime, user: str, method_id: str) -> tuple[bool | None, bool]:
    """(True: removed now, False: already gone, None: Entra failed; sessions revoked). Both are tried."""
    removed: bool | None = None
    try:
        method = AuthMethod(id=method_id, kind=MethodKind.FIDO2, display_name=None, created=None)
        removed = await rt.directory.delete_method(user, method)
    except DirectoryError as exc:
        log.error("desk.looks_wrong.delete_failed", error=type(exc).__name__)
    revoked = False
    try:
        await rt.directory.revoke_sessions(user)
        revoked = True
    except DirectoryError as exc:
        log.error("desk.looks_wrong.revoke_failed", error=type(exc).__name__)
    return removed, revoked


async def _tell_everyone(
    rt: Runtime,
    request: TapRequest,
    prov: DeskProvisioning,
    clicker: str,
    removed: bool | None,
    revoked: bool,
    flag: Flag,
    pin: bool,
    pin_row: SealedPin | None,
) -> str:
    """The loud alert, the person (DM and mail), the PIN offer; returns the manager's reply."""
    key, desk, name = views.key_words(prov.key_report), _desk(request), views.person_name(request)
    done = []
    if removed is not None:
        done.append("removed its passkey from their account" if removed else "found its passkey already gone")
    if revoked:
        done.append("ended their sign-in sessions")
    if pin:
        done.append("deleted the PIN waiting for pickup")
    if flag is Flag.MARKED:
        done.append("marked the key lost in the inventory: do not hand it over, reset it")
    elif flag is Flag.ALREADY:
        done.append("found the key already marked lost in the inventory")
    missing = []
    if removed is None:
        missing.append(f"remove passkey `{safe(prov.method_id or '', 200)}` from their account")
    if not revoked:
        missing.append("revoke their sign-in sessions")
    what = f"keydesk {', '.join(done)}." if done else "keydesk could not do anything."
    todo = (
        f" Microsoft Entra didn't answer, so *do this by hand now*: {'; '.join(missing)} (keydesk also "
        "tries again every minute for 24 h and says so here when it's done)."
        if missing
        else ""
    )
    if flag is Flag.ABSENT:
        todo += " The key is not in the inventory under this passkey any more: find it and reset it."
    await tap_common.alert(
        rt,
        f"<@{clicker}> (manager) flagged the security key ({key}) that <@{prov.technician_slack_id}> prepared for "
        f"<@{request.target_slack_id}> at desk `{desk}` as wrong. {what}{todo}",
        loud=True,
        thread_of=request,
    )
    text, blocks = views.person_stopped(desk, rt.settings.support_contact)
    try:
        await rt.slack.post_dm(request.target_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("desk.looks_wrong.person_dm_failed", error=exc.code)
    subject, body = views.stopped_mail(key, desk, rt.settings.support_contact)
    await tap_common.mail_person(rt, request, subject, body, event="desk.looks_wrong.mail_failed")
    if pin and pin_row is not None and pin_row.dm_channel and pin_row.dm_ts:
        try:
            await rt.slack.update(PostedMessage(pin_row.dm_channel, pin_row.dm_ts), *views.pin_withdrawn())
        except SlackError as exc:
            log.warning("desk.looks_wrong.pin_message_failed", error=exc.code)
    held = "the key won't be handed over" if flag is Flag.MARKED else "the helpdesk will find the key"
    if removed is not None and revoked:
        return (
            f"Done: the key is removed from {name}'s account, their sign-in sessions are ending, {held}, "
            "and the helpdesk is alerted."
        )
    failed = " and ".join(
        part
        for part, ok in (
            ("remove the key from their account", removed is not None),
            ("end their sessions", revoked),
        )
        if not ok
    )
    return (
        f"I couldn't reach Microsoft Entra to {failed}, so that is *not* done yet. {held.capitalize()}, "
        "and the helpdesk has been alerted to finish it by hand now."
    )


# --- small helpers ---------------------------------------------------------------------------------
async def _refused(rt: Runtime, actor: str, request_id: str, reason: str, message: str) -> str:
    await rt.audit.record(
        "desk.looks_wrong.refused",
        actor=actor,
        target=f"request:{request_id[:64]}",
        outcome="refused",
        details={"reason": reason},
    )
    return message


def _desk(request: TapRequest) -> str:
    return safe(str((request.target_profile or {}).get("desk") or "the helpdesk"), 64)
