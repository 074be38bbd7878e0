"""The key inventory: every key an agent inspects is recorded, and `/keydesk key SERIAL` shows its life."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.text import clean, safe
from bot.services import approvals, desk_link, tap_common
from bot.services.desk_link import JobOutcome
from bot.services.runtime import Runtime
from bot.slack import desk_views
from bot.store import desk_repo, key_repo
from bot.store.models.key_inventory import KeyEvent, KeyRecord, KeyState

MAX_KEYS_PER_RESULT = 16


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return clean(value, limit) or None


async def record_seen(
    rt: Runtime, outcome: JobOutcome, report: dict[str, Any], at: datetime
) -> KeyRecord | None:
    """Create or update the key's record from one inspect report and add a `seen` event."""
    aaguid = _text(report.get("aaguid"), 36)
    if aaguid is None:
        return None
    serial = _text(report.get("serial_number"), 128)
    model = _text(report.get("model"), 200) or _text(report.get("product_name"), 200)
    firmware = _text(report.get("firmware"), 64)
    actor = (
        f"slack:{outcome.requested_by_slack_id}"
        if outcome.requested_by_slack_id
        else f"agent:{outcome.agent_name}"
    )
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


def register_result_handlers() -> None:
    desk_link.on_result("inspect", inspect_done)


async def _may(rt: Runtime, slack_user_id: str, action: str) -> str | None:
    _, problem = await approvals.authorise_approver(rt, slack_user_id, None)
    if problem:
        await rt.audit.record(
            action, actor=f"slack:{slack_user_id}", outcome="refused", details={"reason": "not_authorised"}
        )
        return problem.replace("decide pass requests", "use the desk tools")
    return None


async def show_key(rt: Runtime, slack_user_id: str, serial: str) -> str:
    problem = await _may(rt, slack_user_id, "key.show.refused")
    if problem:
        return problem
    serial = clean(serial, 128)
    async with rt.db.read() as session:
        records: Sequence[KeyRecord] = await key_repo.by_serial(session, serial)
        events = {r.id: await key_repo.events(session, r.id) for r in records}
        desks = {a.id: a.name for a in await desk_repo.agents(session)}
    await rt.audit.record(
        "key.show", actor=f"slack:{slack_user_id}", details={"serial": serial, "found": len(records)}
    )
    if not records:
        return f"No key with serial `{safe(serial, 128)}` is in the inventory."
    return desk_views.key_history(records, events, desks)


async def inspect_at(rt: Runtime, slack_user_id: str, desk_name: str) -> str:
    problem = await _may(rt, slack_user_id, "desk.inspect.refused")
    if problem:
        return problem
    async with rt.db.read() as session:
        agent = await desk_repo.agent_by_name(session, desk_name)
    if agent is None:
        return f"There is no desk agent named `{safe(desk_name, 64)}`. See `/keydesk desk list`."
    try:
        await desk_link.submit_job(rt, agent.id, "inspect", None, {}, requested_by_slack_id=slack_user_id)
    except desk_link.AgentUnavailable as exc:
        await rt.audit.record(
            "desk.inspect.refused",
            actor=f"slack:{slack_user_id}",
            target=f"desk:{agent.id}",
            outcome="refused",
            details={"reason": f"agent_{exc}"},
        )
        return f"Desk `{agent.name}` can't take jobs: it is {str(exc).replace('_', ' ')}."
    return f"Sent to desk `{agent.name}`: plug the key in there. I'll DM you what it finds."
