"""What each durable deadline kind does when it comes due."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.deadlines import Deadline, RetryLater
from bot.directory import Throttled, Unavailable
from bot.services import (
    approvals,
    delivery,
    desk_inventory,
    desk_link,
    desk_notices,
    desk_provisioning,
    lost_key,
    onboarding,
    privileged,
    registration,
    security_alerts,
)
from bot.services.runtime import Runtime


def _per_request(
    rt: Runtime, work: Callable[[Runtime, str], Awaitable[object]]
) -> Callable[[Deadline], Awaitable[None]]:
    async def handler(deadline: Deadline) -> None:
        try:
            await work(rt, str(deadline.payload["request_id"]))
        except Throttled as exc:
            raise RetryLater(exc.retry_after, "graph throttled") from None
        except Unavailable:
            raise RetryLater(30, "graph unavailable") from None

    return handler


def register_deadline_handlers(rt: Runtime) -> None:
    rt.deadlines.register(onboarding.DECISION_DEADLINE, _per_request(rt, approvals.expire_decision))
    rt.deadlines.register(approvals.APPROVAL_DEADLINE, _per_request(rt, approvals.expire_approval))
    rt.deadlines.register(delivery.ORPHAN_DEADLINE, _per_request(rt, delivery.check_orphan))
    rt.deadlines.register(delivery.PASS_EXPIRY_DEADLINE, _per_request(rt, delivery.expire_pass))
    rt.deadlines.register(privileged.COOLING_OFF_DEADLINE, _per_request(rt, privileged.cooling_off_over))
    lost_key.register_lost_key_deadlines(rt)
    registration.register_registration_deadlines(rt)
    desk_link.register_deadlines(rt)
    desk_inventory.register_result_handlers()
    desk_provisioning.register(rt)
    desk_notices.register(rt)
    security_alerts.register(rt)
