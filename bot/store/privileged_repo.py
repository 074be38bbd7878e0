"""Compare-and-set writes of the admin process's two approvals: each is recorded once, whatever races it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.tap_request import RequestState, check_transition
from bot.store.models.tap_requests import TapRequest


async def record_first_approval(
    session: AsyncSession,
    request_id: str,
    *,
    slack_id: str,
    entra_id: str,
    at: datetime,
    method: str | None,
    note: str | None,
) -> bool:
    """Approval 1 of 2: only while the request awaits approval and nobody gave the first one yet."""
    result = await session.execute(
        update(TapRequest)
        .where(
            TapRequest.id == request_id,
            TapRequest.state == RequestState.AWAITING_APPROVAL.value,
            TapRequest.approvals_needed > 1,
            TapRequest.first_approver_slack_id.is_(None),
        )
        .values(
            first_approver_slack_id=slack_id,
            first_approver_entra_id=entra_id,
            first_approved_at=at,
            first_verification_method=method,
            first_approval_note=note,
            version=TapRequest.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_second_approval(
    session: AsyncSession,
    request_id: str,
    *,
    slack_id: str,
    entra_id: str,
    at: datetime,
    method: str | None,
    note: str | None,
    reveal_not_before: datetime,
    valid_until: datetime,
) -> bool:
    """Approval 2 of 2 moves the request to APPROVED, only if a *different* approver gave the first."""
    check_transition(RequestState.AWAITING_APPROVAL, RequestState.APPROVED)
    result = await session.execute(
        update(TapRequest)
        .where(
            TapRequest.id == request_id,
            TapRequest.state == RequestState.AWAITING_APPROVAL.value,
            TapRequest.first_approver_slack_id.is_not(None),
            TapRequest.first_approver_slack_id != slack_id,
            or_(TapRequest.first_approver_entra_id.is_(None), TapRequest.first_approver_entra_id != entra_id),
        )
        .values(
            state=RequestState.APPROVED.value,
            version=TapRequest.version + 1,
            decided_by_slack_id=slack_id,
            second_approver_slack_id=slack_id,
            decided_by_entra_id=entra_id,
            decided_at=at,
            verification_method=method,
            decision_note=note,
            reveal_not_before=reveal_not_before,
            approval_valid_until=valid_until,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
