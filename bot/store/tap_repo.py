"""Reads and compare-and-set writes of TAP requests: a transition wins once, whatever races it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.tap_request import OPEN_STATES, RequestKind, RequestState, check_transition
from bot.store.models.tap_requests import TapIssuance, TapRequest


async def get(session: AsyncSession, request_id: str) -> TapRequest | None:
    return await session.get(TapRequest, request_id, populate_existing=True)


async def open_for_target(session: AsyncSession, target_slack_id: str) -> TapRequest | None:
    result = await session.execute(
        select(TapRequest).where(
            TapRequest.target_slack_id == target_slack_id,
            TapRequest.state.in_([s.value for s in OPEN_STATES]),
        )
    )
    return result.scalar_one_or_none()


async def latest_for_target(session: AsyncSession, target_slack_id: str) -> TapRequest | None:
    result = await session.execute(
        select(TapRequest)
        .where(TapRequest.target_slack_id == target_slack_id)
        .order_by(TapRequest.created_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def add(session: AsyncSession, request: TapRequest) -> TapRequest:
    session.add(request)
    await session.flush()
    return request


async def transition(
    session: AsyncSession,
    request_id: str,
    *,
    expected: RequestState | Iterable[RequestState],
    to: RequestState,
    **values: Any,
) -> bool:
    """Move the request to `to` only if it is still in `expected`; True for the one caller that wins."""
    allowed = [expected] if isinstance(expected, RequestState) else list(expected)
    for state in allowed:
        check_transition(state, to)
    result = await session.execute(
        update(TapRequest)
        .where(TapRequest.id == request_id, TapRequest.state.in_([s.value for s in allowed]))
        .values(state=to.value, version=TapRequest.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_fields(session: AsyncSession, request_id: str, **values: Any) -> None:
    await session.execute(
        update(TapRequest)
        .where(TapRequest.id == request_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def count_requests_since(session: AsyncSession, target_slack_id: str, since: datetime) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(TapRequest)
        .where(TapRequest.target_slack_id == target_slack_id, TapRequest.created_at >= since)
    )
    return int(result.scalar_one())


async def count_issuances_since(
    session: AsyncSession,
    since: datetime,
    *,
    target_entra_id: str | None = None,
    approver_slack_id: str | None = None,
) -> int:
    query = select(func.count()).select_from(TapIssuance).where(TapIssuance.created_at >= since)
    if target_entra_id is not None:
        query = query.where(TapIssuance.target_entra_id == target_entra_id)
    if approver_slack_id is not None:
        query = query.where(TapIssuance.approver_slack_id == approver_slack_id)
    return int((await session.execute(query)).scalar_one())


async def count_desk_keys_since(session: AsyncSession, since: datetime) -> int:
    """Keys approved for preparation at a desk since `since` that were not stopped before Entra saw
    them (being prepared, registered, done, or stopped by the manager after Entra held them):
    credentials issued, like passes."""
    result = await session.execute(
        select(func.count())
        .select_from(TapRequest)
        .where(
            TapRequest.kind == RequestKind.DESK_KEY.value,
            TapRequest.decided_at >= since,
            # REVOKED counts too: a desk key is revoked only after Entra held it (the manager's stop).
            TapRequest.state.in_(
                [
                    RequestState.ISSUING.value,
                    RequestState.ISSUED.value,
                    RequestState.COMPLETED.value,
                    RequestState.REVOKED.value,
                ]
            ),
        )
    )
    return int(result.scalar_one())


async def count_approvals_since(session: AsyncSession, approver_slack_id: str, since: datetime) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(TapRequest)
        .where(
            TapRequest.decided_by_slack_id == approver_slack_id,
            TapRequest.decided_at >= since,
            TapRequest.state != RequestState.DENIED.value,
        )
    )
    return int(result.scalar_one())


async def record_issuance(session: AsyncSession, issuance: TapIssuance) -> None:
    session.add(issuance)
    await session.flush()
