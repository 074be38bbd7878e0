"""What the desk-agent services share: refusals that are audited and, when suspicious, alerted."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services import tap_common
from bot.services.runtime import Runtime
from bot.store.models.desk_provisioning import DeskProvisioning


@dataclass
class LinkRefused(Exception):
    """An agent's request refused: `status` for HTTP, `reason` for audit, `message` for the agent's user."""

    status: int
    reason: str
    message: str
    retry_after: float | None = None  # for a 429: seconds the agent must wait (sent as Retry-After)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


async def refuse(
    rt: Runtime,
    action: str,
    *,
    actor: str,
    target: str | None,
    status: int,
    reason: str,
    message: str,
    alert: str | None = None,
    details: dict[str, object] | None = None,
) -> LinkRefused:
    """Audit the refusal, raise the alert if any, and return the exception for the caller to raise."""
    await rt.audit.record(
        action, actor=actor, target=target, outcome="refused", details={"reason": reason, **(details or {})}
    )
    if alert:
        await tap_common.alert(rt, alert, loud=True)
    return LinkRefused(status, reason, message)


async def provisioning(rt: Runtime, request_id: str) -> DeskProvisioning | None:
    """A desk key's provisioning row as the database has it now."""
    async with rt.db.read() as session:
        return await session.get(DeskProvisioning, request_id, populate_existing=True)
