"""The durable finish: a deadline completes what Graph would not do at once, or hands it to the helpdesk."""

from __future__ import annotations

from typing import Any

from bot.deadlines import Deadline, RetryLater
from bot.logs import get_logger
from bot.services import tap_common
from bot.services.lost_key.common import DEFAULT_WAIT, FINISH_DEADLINE, _audit, load
from bot.services.lost_key.notices import _post_status
from bot.services.lost_key.steps import _settle, run_steps
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.slack.messenger import SlackError
from bot.store import lost_repo
from bot.store.models.lost_reports import LostReason, LostReport, ReportState

log = get_logger(__name__)


async def finish(rt: Runtime, report_id: str) -> float | None:
    """Deadline: finish what Graph would not do earlier. Returns the seconds to wait before trying again,
    or None when there is nothing more to do (done, or handed to the helpdesk)."""
    report = await load(rt, report_id)
    if report is None or ReportState(report.state) not in (ReportState.RUNNING, ReportState.PARTIAL):
        return None
    if report.finish_by is not None and rt.clock.now() >= report.finish_by:
        await _give_up(rt, report)
        return None
    run = await run_steps(rt, report_id)
    state = await _settle(rt, report, run, reschedule=False)
    if state is ReportState.DONE:
        await _notify_finished(rt, report_id)
    if state is not ReportState.PARTIAL:
        return None
    return run.wait or DEFAULT_WAIT


async def _give_up(rt: Runtime, report: LostReport) -> None:
    async with rt.db.session() as session:
        won = await lost_repo.transition(
            session,
            report.id,
            expected=[ReportState.RUNNING, ReportState.PARTIAL],
            to=ReportState.GAVE_UP,
            completed_at=rt.clock.now(),
        )
    if won:
        await _audit(rt, "gave_up", "system", report, outcome="failed")
        await _notify_finished(rt, report.id, loud=True)


async def _notify_finished(rt: Runtime, report_id: str, *, loud: bool = False) -> None:
    report = await load(rt, report_id)
    assert report is not None
    await _post_status(rt, report)
    text, blocks = views.completion_dm(report)
    await _dm(rt, report, text, blocks)
    await tap_common.alert(
        rt, views.helpdesk_completion(report), loud=loud or report.reason == LostReason.STOLEN
    )
    await _audit(rt, "notified", "system", report, stage="finished")


async def _dm(rt: Runtime, report: LostReport, text: str, blocks: list[dict[str, Any]]) -> None:
    try:
        await rt.slack.post_dm(report.target_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("lostkey.dm_failed", error=exc.code)


def register_lost_key_deadlines(rt: Runtime) -> None:
    """Call once from `bot.services.timers.register_deadline_handlers`."""

    async def handler(deadline: Deadline) -> None:
        wait = await finish(rt, str(deadline.payload.get("report_id") or ""))
        if wait is not None:
            raise RetryLater(wait, "lost-key steps owed")

    rt.deadlines.register(FINISH_DEADLINE, handler)
