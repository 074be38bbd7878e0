"""'Remove now': start the report exactly once, run its steps, then tell people and show the outcome."""

from __future__ import annotations

from datetime import timedelta

from bot.services.lost_key.common import FINISH_DEADLINE, _deadline_key, _set_view, _summary
from bot.services.lost_key.guards import _may_report, _owned
from bot.services.lost_key.notices import _manager_slack_id, _notify_started
from bot.services.lost_key.screen import _duplicate, show
from bot.services.lost_key.steps import _settle, run_steps
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.store import lost_repo
from bot.store.models.lost_reports import LostReport, ReportState, entries

SAFETY_NET = timedelta(minutes=5)  # a run that died half-way is picked up by the deadline after this
FINISH_WITHIN = timedelta(hours=24)  # after this the helpdesk finishes by hand


async def confirm(rt: Runtime, submitter: str, view_id: str, root_id: str, report_id: str) -> None:
    """'Remove now' was pressed (the handler already answered 'working')."""
    report = await _owned(rt, report_id, submitter, view_id, root_id)
    if report is None:
        return
    if report.for_someone_else:
        problem = await _may_report(rt, submitter, report.target_slack_id)
        if problem:
            await _set_view(rt, view_id, views.message_modal(problem))
            return
    if not await _start(rt, report, submitter):
        await _duplicate(rt, report, submitter, view_id)
        return
    run = await run_steps(rt, report.id)
    await _settle(rt, report, run, reschedule=True)
    manager = await _manager_slack_id(rt, report.target_entra_id)
    async with rt.db.session() as session:
        await lost_repo.set_fields(session, report.id, manager_slack_id=manager)
    await _notify_started(rt, report.id)
    await show(rt, view_id, report.id, submitter)


async def _start(rt: Runtime, report: LostReport, submitter: str) -> bool:
    """CONFIRMING -> RUNNING for exactly one submission; the intent is audited before any Graph call."""
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await lost_repo.transition(
            session,
            report.id,
            expected=ReportState.CONFIRMING,
            to=ReportState.RUNNING,
            confirmed_at=now,
            finish_by=now + FINISH_WITHIN,
        )
        if not won:
            return False
        await rt.deadlines.schedule(
            FINISH_DEADLINE,
            now + SAFETY_NET,
            {"report_id": report.id},
            key=_deadline_key(report.id),
            replace=True,
            session=session,
        )
        await rt.audit.record(
            "lostkey.confirmed",
            actor=f"slack:{submitter}",
            target=f"entra:{report.target_entra_id}",
            details={
                "report_id": report.id,
                "reason": report.reason,
                "methods": _summary(entries(report)),
                "for_someone_else": report.for_someone_else,
            },
            session=session,
        )
    return True
