"""The modal drawn from the report's row; a second submission waits for the first one to settle."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.services.lost_key.common import _audit, _set_view, load
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.store.models.lost_reports import IN_FLIGHT, LostReason, LostReport, ReportState, entries

SETTLE_POLL = 0.2
SETTLE_ROUNDS = 75


async def show(rt: Runtime, view_id: str, report_id: str, viewer: str) -> None:
    report = await load(rt, report_id)
    if report is None:
        return
    await _set_view(rt, view_id, _modal_for(rt, report, viewer))


def _modal_for(rt: Runtime, report: LostReport, viewer: str) -> dict[str, Any]:
    reader = views.reader_for(report, viewer)
    state = ReportState(report.state)
    if state in IN_FLIGHT:
        return views.working_modal("Working on it…")
    if state is ReportState.CONFIRMING:
        return views.confirm_modal(
            report, reader, last_strong=report.strong_left is False and any(e.strong for e in entries(report))
        )
    if state is ReportState.REFUSED:
        return views.message_modal("I stopped this report. Nothing was removed.")
    if state in (ReportState.ABANDONED, ReportState.FORM):
        return views.message_modal("Nothing was changed. Please run `/lostkey` again.")
    if report.reason == LostReason.AT_HOME:
        return views.at_home_result_modal(reader)
    return views.result_modal(report, reader, rt.settings.support_contact)


async def show_when_settled(rt: Runtime, view_id: str, report_id: str, viewer: str) -> None:
    """A second submission: wait for the first one to finish its step, then show the same outcome."""
    for _ in range(SETTLE_ROUNDS):
        report = await load(rt, report_id)
        if report is None or ReportState(report.state) not in IN_FLIGHT:
            break
        await asyncio.sleep(SETTLE_POLL)
    await show(rt, view_id, report_id, viewer)


async def _duplicate(rt: Runtime, report: LostReport, submitter: str, view_id: str) -> None:
    await _audit(rt, "submit.duplicate", f"slack:{submitter}", report, outcome="refused", state=report.state)
    await show_when_settled(rt, view_id, report.id, submitter)
