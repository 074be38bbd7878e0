"""Bookkeeping for incoming Slack requests: first-delivery checks and refusals of foreign requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.logs import get_logger
from bot.services.runtime import Runtime
from bot.store import events_repo

log = get_logger(__name__)

EVENT_MEMORY = timedelta(days=1)


async def first_delivery(rt: Runtime, event_id: str) -> bool:
    """True for the first delivery of an event across all replicas (retries share the event_id)."""
    async with rt.db.single_statement() as session:
        return await events_repo.claim_event(session, event_id[:128], rt.clock.now())


async def refuse_foreign(rt: Runtime, reason: str, body: dict[str, Any]) -> None:
    log.warning("slack.request.foreign", reason=reason)
    await rt.audit.record(
        "slack.request.refused",
        actor="slack:unknown",
        outcome="refused",
        details={"reason": f"foreign {reason}"[:200], "type": str(body.get("type"))[:40]},
    )


async def forget_old_events(rt: Runtime) -> int:
    async with rt.db.session() as session:
        return await events_repo.forget_before(session, rt.clock.now() - EVENT_MEMORY)
