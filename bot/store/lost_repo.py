"""Reads and compare-and-set writes of lost-key reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models.lost_reports import LostReport, ReportState


async def get(session: AsyncSession, report_id: str) -> LostReport | None:
    return await session.get(LostReport, report_id, populate_existing=True)


async def by_key(session: AsyncSession, key: str) -> LostReport | None:
    result = await session.execute(select(LostReport).where(LostReport.idempotency_key == key))
    return result.scalar_one_or_none()


async def add(session: AsyncSession, report: LostReport) -> LostReport:
    """Insert; a duplicate idempotency key raises IntegrityError (the caller reads the winner)."""
    session.add(report)
    await session.flush()
    return report


async def transition(
    session: AsyncSession,
    report_id: str,
    *,
    expected: ReportState | Iterable[ReportState],
    to: ReportState,
    **values: Any,
) -> bool:
    """Move the report to `to` only if it is still in `expected`: True for the one caller that wins."""
    allowed = [expected] if isinstance(expected, ReportState) else list(expected)
    result = await session.execute(
        update(LostReport)
        .where(LostReport.id == report_id, LostReport.state.in_([s.value for s in allowed]))
        .values(state=to.value, version=LostReport.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_fields(session: AsyncSession, report_id: str, **values: Any) -> None:
    await session.execute(
        update(LostReport)
        .where(LostReport.id == report_id)
        .values(version=LostReport.version + 1, **values)
        .execution_options(synchronize_session=False)
    )


async def claim_once(session: AsyncSession, report_id: str, column: str, value: Any) -> bool:
    """Set `column` only while it is still NULL: True for the one caller that set it (a choice made once)."""
    field = getattr(LostReport, column)
    result = await session.execute(
        update(LostReport)
        .where(LostReport.id == report_id, field.is_(None))
        .values({column: value, "version": LostReport.version + 1})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
