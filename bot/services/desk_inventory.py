"""The key inventory: every key an agent inspects is recorded, and `/keydesk key SERIAL` shows its life."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.text import clean, safe
from bot.logs import get_logger
from bot.services import approvals, desk_link, tap_common
from bot.services.desk_link import JobOutcome
from bot.services.runtime import Runtime
from bot.slack import desk_views
from bot.slack.messenger import SlackError
from bot.store import desk_repo, key_repo
from bot.store.models.desk import DeskAgent
from bot.store.models.key_inventory import KeyEvent, KeyRecord, KeyState

log = get_logger(__name__)

MAX_KEYS_PER_RESULT = 16


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return clean(value, limit) or None


@dataclass(frozen=True, slots=True)
class KeyReport:
    """What an agent's key report says about the key itself (the inspect shape), cleaned for storage."""

    aaguid: str
    serial: str | None
    model: str | None
    firmware: str | None

    @classmethod
    def of(cls, report: dict[str, Any]) -> KeyReport | None:
        """None when the report names no AAGUID (nothing to file the key under)."""
        aaguid = _text(report.get("aaguid"), 36)
        if aaguid is None:
            return None
        return cls(
            aaguid=aaguid,
            serial=_text(report.get("serial_number"), 128) or _text(report.get("serial"), 128),
            model=_text(report.get("model"), 200) or _text(report.get("product_name"), 200),
            firmware=_text(report.get("firmware"), 64),
        )


def _job_actor(outcome: JobOutcome) -> str:
    """Who a job's effect is recorded under: the Slack user who asked for it, else the desk itself."""
    if outcome.requested_by_slack_id:
        return f"slack:{outcome.requested_by_slack_id}"
    return f"agent:{outcome.agent_name}"


async def record_seen(
    rt: Runtime, outcome: JobOutcome, report: dict[str, Any], at: datetime
) -> KeyRecord | None:
    """Create or update the key's record from one inspect report and add a `seen` event."""
    key = KeyReport.of(report)
    if key is None:
        return None
    aaguid, serial, model, firmware = key.aaguid, key.serial, key.model, key.firmware
    actor = _job_actor(outcome)
    async with rt.db.session() as session:
        record = await key_repo.by_model_serial(session, aaguid, serial) if serial else None
        if record is None:
            record = KeyRecord(
                id=str(uuid.uuid4()),
                serial=serial,
                aaguid=aaguid,
                model=model,
                firmware=firmware,
                state=KeyState.STOCK.value,
                desk_agent_id=outcome.agent_id,
                first_seen_at=at,
                last_seen_at=at,
            )
            await key_repo.add(session, record)
        else:
            key_repo.touch(
                record,
                model=model or record.model,
                firmware=firmware or record.firmware,
                desk_agent_id=outcome.agent_id,
                last_seen_at=at,
            )
        await key_repo.add_event(
            session,
            KeyEvent(
                key_id=record.id,
                at=at,
                kind="inspected",
                actor=actor,
                desk_agent_id=outcome.agent_id,
                details={
                    "job_id": outcome.job_id,
                    "pin_set": bool(report.get("pin_set")),
                    "policy": _text(report.get("policy"), 32),
                },
            ),
        )
        await rt.audit.record(
            "key.inventory.seen",
            actor=actor,
            target=f"key:{record.id}",
            details={"serial": serial, "aaguid": aaguid, "desk": outcome.agent_id, "job_id": outcome.job_id},
            session=session,
        )
    return record


def actor_of(actor: str) -> str:
    """Audit actor form: a bare Slack user id becomes `slack:U…`; `agent:…`, `system` etc. stay."""
    actor = clean(actor, 120) or "system"
    return actor if ":" in actor or actor == "system" else f"slack:{actor}"


async def record_provisioned(
    rt: Runtime,
    *,
    agent_id: str,
    report: dict[str, Any],
    target_entra_id: str,
    target_slack_id: str | None,
    method_id: str | None,
    actor: str,
) -> KeyRecord | None:
    """The key at desk `agent_id` now holds `target_entra_id`'s passkey (Entra method `method_id`).

    `report` is the agent's key report (the inspect shape: `aaguid`, `serial_number`, `model` or
    `product_name`, `firmware`); None is returned only when it names no AAGUID. The record is found
    by model+serial, else (a key hiding its serial) by the Entra method id, else created; its state
    becomes `provisioned`, bound to the user, and a `provisioned` event names `actor` (a Slack user id
    or an audit actor such as `slack:U1`). Idempotent for a retried call with the same method id.
    """
    key = KeyReport.of(report)
    if key is None:
        return None
    aaguid, serial, model, firmware = key.aaguid, key.serial, key.model, key.firmware
    method = _text(method_id, 200)
    who = actor_of(actor)
    at = rt.clock.now()
    async with rt.db.session() as session:
        record = await key_repo.by_model_serial(session, aaguid, serial) if serial else None
        if record is None and method:
            record = await key_repo.by_method(session, method)
        if (
            record is not None
            and method
            and (record.state, record.user_entra_id, record.entra_method_id)
            == (KeyState.PROVISIONED.value, target_entra_id, method)
        ):
            return record  # the same provisioning reported again: already recorded
        before = (record.state, record.user_entra_id) if record else (None, None)
        if record is None:
            record = KeyRecord(
                id=str(uuid.uuid4()),
                serial=serial,
                aaguid=aaguid,
                model=model,
                firmware=firmware,
                state=KeyState.PROVISIONED.value,
                user_entra_id=target_entra_id,
                user_slack_id=target_slack_id,
                entra_method_id=method,
                desk_agent_id=agent_id,
                first_seen_at=at,
                last_seen_at=at,
            )
            await key_repo.add(session, record)
        else:
            key_repo.touch(
                record,
                model=model or record.model,
                firmware=firmware or record.firmware,
                state=KeyState.PROVISIONED.value,
                user_entra_id=target_entra_id,
                user_slack_id=target_slack_id,
                entra_method_id=method,
                desk_agent_id=agent_id,
                last_seen_at=at,
            )
        details: dict[str, Any] = {"user": target_entra_id, "method_id": method}
        if before[0] is not None:
            details["previous_state"] = before[0]
        if before[1] and before[1] != target_entra_id:
            details["previous_user"] = before[1]
        await key_repo.add_event(
            session,
            KeyEvent(
                key_id=record.id,
                at=at,
                kind="provisioned",
                actor=who,
                desk_agent_id=agent_id,
                details=details,
            ),
        )
        await rt.audit.record(
            "key.inventory.provisioned",
            actor=who,
            target=f"key:{record.id}",
            details={"serial": serial, "aaguid": aaguid, "desk": agent_id, **details},
            session=session,
        )
    return record


def _summary(report: dict[str, Any]) -> str:
    serial = safe(_text(report.get("serial_number"), 128) or "no serial exposed", 128)
    model = safe(_text(report.get("model"), 200) or "unknown model", 200)
    firmware = safe(_text(report.get("firmware"), 64) or "not reported", 64)
    pin = "PIN set" if report.get("pin_set") else "no PIN"
    if report.get("force_pin_change_pending"):
        pin += " (forced change pending)"
    creds = report.get("discoverable_credentials")
    passkeys = f"{creds} passkeys" if isinstance(creds, int) else "passkeys not counted"
    gaps = report.get("entra_gaps") or []
    entra = (
        "suitable for Entra"
        if not gaps
        else "not suitable for Entra: " + safe("; ".join(map(str, gaps)), 300)
    )
    return (
        f"• *{model}* · serial `{serial}` · AAGUID `{safe(str(report.get('aaguid')), 36)}` · "
        f"firmware {firmware} · {pin} · {passkeys} · {entra}"
    )


async def inspect_done(rt: Runtime, outcome: JobOutcome) -> None:
    """Record every inspected key, then tell the technician what the desk saw."""
    who = outcome.requested_by_slack_id
    if not outcome.ok:
        if who:
            await tap_common.tell(
                rt, who, f"Desk `{outcome.agent_name}` could not inspect the key: {outcome.error}"
            )
        return
    raw = outcome.result.get("keys")
    reports = [r for r in raw if isinstance(r, dict)][:MAX_KEYS_PER_RESULT] if isinstance(raw, list) else []
    at = rt.clock.now()
    for report in reports:
        await record_seen(rt, outcome, report, at)
    if not who:
        return
    if not reports:
        await tap_common.tell(
            rt, who, f"Desk `{outcome.agent_name}` found no security key. Plug one in and ask again."
        )
        return
    lines = [f"Desk `{outcome.agent_name}` inspected {len(reports)} key(s); recorded in the inventory:"]
    lines += [_summary(r) for r in reports]
    await tap_common.tell(rt, who, "\n".join(lines))


async def _may(rt: Runtime, slack_user_id: str, action: str) -> str | None:
    _, problem = await approvals.authorise_approver(rt, slack_user_id, None)
    if problem:
        await rt.audit.record(
            action, actor=f"slack:{slack_user_id}", outcome="refused", details={"reason": "not_authorised"}
        )
        return problem.replace("decide pass requests", "use the desk tools")
    return None


async def key_card(rt: Runtime, slack_user_id: str, serial: str) -> tuple[str, list[dict[str, Any]] | None]:
    """`/keydesk key SERIAL`: the key's record, its whole history, and the custody buttons (approvers)."""
    problem = await _may(rt, slack_user_id, "key.show.refused")
    if problem:
        return problem, None
    serial = clean(serial, 128)
    async with rt.db.read() as session:
        records: Sequence[KeyRecord] = await key_repo.by_serial(session, serial)
        events = {r.id: await key_repo.events(session, r.id) for r in records}
        desks = {a.id: a.name for a in await desk_repo.agents(session)}
    await rt.audit.record(
        "key.show", actor=f"slack:{slack_user_id}", details={"serial": serial, "found": len(records)}
    )
    if not records:
        return f"No key with serial `{safe(serial, 128)}` is in the inventory.", None
    return desk_views.key_history(records, events, desks), desk_views.key_card(records, events, desks)


async def show_key(rt: Runtime, slack_user_id: str, serial: str) -> str:
    """The text of `key_card` (kept for callers that only post text)."""
    text, _ = await key_card(rt, slack_user_id, serial)
    return text


async def _desk_for_job(
    rt: Runtime, slack_user_id: str, desk_name: str, action: str
) -> tuple[DeskAgent | None, str | None]:
    problem = await _may(rt, slack_user_id, action)
    if problem:
        return None, problem
    async with rt.db.read() as session:
        agent = await desk_repo.agent_by_name(session, desk_name)
    if agent is None:
        await rt.audit.record(
            action,
            actor=f"slack:{slack_user_id}",
            target=f"desk:{clean(desk_name, 64)}",
            outcome="refused",
            details={"reason": "unknown_desk"},
        )
        return None, f"There is no desk agent named `{safe(desk_name, 64)}`. See `/keydesk desk list`."
    return agent, None


async def _submit(
    rt: Runtime, slack_user_id: str, agent: DeskAgent, kind: str, params: dict[str, Any], action: str
) -> str | None:
    """Queue the job; the refusal sentence (audited) when the desk can't take it."""
    try:
        await desk_link.submit_job(rt, agent.id, kind, None, params, requested_by_slack_id=slack_user_id)
    except desk_link.AgentUnavailable as exc:
        await rt.audit.record(
            action,
            actor=f"slack:{slack_user_id}",
            target=f"desk:{agent.id}",
            outcome="refused",
            details={"reason": f"agent_{exc}"},
        )
        return f"Desk `{agent.name}` can't take jobs: it is {str(exc).replace('_', ' ')}."
    return None


async def inspect_at(rt: Runtime, slack_user_id: str, desk_name: str) -> str:
    agent, problem = await _desk_for_job(rt, slack_user_id, desk_name, "desk.inspect.refused")
    if agent is None:
        return problem or ""
    refused = await _submit(rt, slack_user_id, agent, "inspect", {}, "desk.inspect.refused")
    return refused or f"Sent to desk `{agent.name}`: plug the key in there. I'll DM you what it finds."


# --- reset from Slack -----------------------------------------------------------------------------
RESET_ORIGIN = "slack_reset"  # marks the reset jobs this module asked for (provisioning has its own)


async def reset_at(rt: Runtime, slack_user_id: str, desk_name: str) -> str:
    """`/keydesk desk reset NAME`: an approver asks the desk to factory-reset the key plugged in there.
    The technician at the desk is guided on the agent's screen (remove, re-insert, touch); the result
    comes back to the approver by DM."""
    action = "desk.reset.refused"
    agent, problem = await _desk_for_job(rt, slack_user_id, desk_name, action)
    if agent is None:
        return problem or ""
    try:
        name = (await rt.slack.user(slack_user_id)).display
    except SlackError:
        name = slack_user_id
    notice = (
        f"Reset requested in Slack by {clean(name, 80)}: this erases every passkey and the PIN of "
        "the key on this desk. Follow the steps below."
    )
    params = {"origin": RESET_ORIGIN, "notice": notice}
    refused = await _submit(rt, slack_user_id, agent, "reset", params, action)
    if refused:
        return refused
    await rt.audit.record(
        "desk.reset.requested",
        actor=f"slack:{slack_user_id}",
        target=f"desk:{agent.id}",
        details={"name": agent.name},
    )
    return (
        f"Reset sent to desk `{agent.name}`. The person at the desk follows the steps on its screen "
        "(remove the key, plug it back in, touch it); I'll DM you the result."
    )


async def reset_done(rt: Runtime, outcome: JobOutcome) -> None:
    if outcome.params.get("origin") != RESET_ORIGIN:
        return
    who = outcome.requested_by_slack_id
    await rt.audit.record(
        "desk.reset.finished",
        actor=f"agent:{outcome.agent_name}",
        target=f"desk:{outcome.agent_id}",
        outcome="ok" if outcome.ok else "failed",
        details={"job_id": outcome.job_id, "error": outcome.error},
    )
    warning = None
    if outcome.ok and isinstance(outcome.result.get("key"), dict):
        warning = await record_reset(rt, outcome, outcome.result["key"])
    if not who:
        return
    if outcome.ok:
        seconds = outcome.result.get("seconds_after_insert")
        when = f" ({seconds} s after it was plugged back in)" if isinstance(seconds, int | float) else ""
        text = (
            f":white_check_mark: Desk `{outcome.agent_name}` reset the key{when}: it has no PIN and no "
            "passkeys now. It can be prepared for someone again."
        )
        if warning:
            text += f"\n{warning}"
    else:
        text = f":x: Desk `{outcome.agent_name}` did not reset the key: {outcome.error}"
    await tap_common.tell(rt, who, text)


async def record_reset(rt: Runtime, outcome: JobOutcome, report: dict[str, Any]) -> str | None:
    """The key a Slack-ordered reset erased goes back to stock, with a `reset` event.

    The user it was prepared for is kept in the event, not on the record. When Entra may still hold
    its passkey (provisioned, handed over, active), the approver is told to remove that method: the
    key can no longer use it, but deleting it is a separate decision (never more than asked).
    """
    key = KeyReport.of(report)
    if key is None or key.serial is None:
        return None  # a key hiding its serial can't be matched to its record
    aaguid, serial = key.aaguid, key.serial
    at = rt.clock.now()
    actor = _job_actor(outcome)
    async with rt.db.session() as session:
        record = await key_repo.by_model_serial(session, aaguid, serial)
        if record is None:
            return None
        before = {
            "previous_state": record.state,
            "user": record.user_entra_id,
            "method_id": record.entra_method_id,
        }
        owner = f"<@{record.user_slack_id}>" if record.user_slack_id else "someone"
        still_registered = record.entra_method_id is not None and record.state in (
            KeyState.PROVISIONED.value,
            KeyState.HANDED_OVER.value,
            KeyState.ACTIVE.value,
        )
        key_repo.touch(
            record,
            state=KeyState.STOCK.value,
            user_entra_id=None,
            user_slack_id=None,
            entra_method_id=None,
            desk_agent_id=outcome.agent_id,
            last_seen_at=at,
        )
        await key_repo.add_event(
            session,
            KeyEvent(
                key_id=record.id,
                at=at,
                kind="reset",
                actor=actor,
                desk_agent_id=outcome.agent_id,
                details={"job_id": outcome.job_id, **before},
            ),
        )
        await rt.audit.record(
            "key.inventory.reset",
            actor=actor,
            target=f"key:{record.id}",
            details={"serial": serial, "aaguid": aaguid, "desk": outcome.agent_id, **before},
            session=session,
        )
    if not still_registered:
        return None
    return (
        f":warning: Key {safe(serial, 128)} was prepared for {owner} (Entra method "
        f"`{safe(before['method_id'] or '', 200)}`). Its passkey is gone from the key, but Entra may still "
        "list it: remove it in Entra or with `/keydesk lost @person`."
    )


# --- lost keys --------------------------------------------------------------------------------------
async def mark_lost(
    rt: Runtime, *, entra_user_id: str, method_ids: list[str], actor: str, reason: str
) -> list[str]:
    """The lost-key flow removed these FIDO2 methods of the user: their keys in the inventory are lost
    (or stolen: `reason`). Returns the ids of the keys marked now; idempotent. Never raises: the
    removal in Entra is what protects the user, the inventory must not stand in its way."""
    wanted = {m for m in method_ids if m}
    if not wanted:
        return []
    who = actor_of(actor)
    why = clean(reason, 32) or "lost"
    marked: list[str] = []
    try:
        at = rt.clock.now()
        async with rt.db.session() as session:
            for record in await key_repo.of_user(session, entra_user_id):
                if record.entra_method_id not in wanted:
                    continue
                if not await key_repo.transition(
                    session,
                    record.id,
                    expected=[s for s in KeyState if s not in (KeyState.LOST, KeyState.RETIRED)],
                    to=KeyState.LOST,
                ):
                    continue
                details = {"reason": why, "method_id": record.entra_method_id, "was": record.state}
                await key_repo.add_event(
                    session,
                    KeyEvent(
                        key_id=record.id, at=at, kind="lost", actor=who, desk_agent_id=None, details=details
                    ),
                )
                await rt.audit.record(
                    "key.inventory.lost",
                    actor=who,
                    target=f"key:{record.id}",
                    details={"serial": record.serial, "user": entra_user_id, **details},
                    session=session,
                )
                marked.append(record.id)
    except Exception as exc:
        log.error("key.inventory.lost_failed", error=type(exc).__name__)
        return []
    return marked


def register_result_handlers() -> None:
    desk_link.on_result("inspect", inspect_done)
    desk_link.on_result("reset", reset_done)
