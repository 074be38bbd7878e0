"""The form is submitted: check the choice against the offer and Entra, or record a key left at home."""

from __future__ import annotations

import asyncio

from bot.directory import DirectoryError
from bot.services import tap_common
from bot.services.lost_key.common import _audit, _directory_down, _entry, _set_view, _summary, load
from bot.services.lost_key.guards import _owned, _privilege, _refuse_privileged
from bot.services.lost_key.notices import _post_status
from bot.services.lost_key.screen import _duplicate, show
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.slack.lost_views import FormInput
from bot.store import lost_repo
from bot.store.models.lost_reports import (
    LostReason,
    LostReport,
    ReportState,
    StepOutcome,
    entries,
    entries_json,
)


async def submit_form(rt: Runtime, submitter: str, view_id: str, root_id: str, form: FormInput) -> None:
    """The reporter chose the methods and what happened (the handler already answered 'working')."""
    report = await _owned(rt, form.report_id, submitter, view_id, root_id)
    if report is None:
        return
    async with rt.db.session() as session:
        won = await lost_repo.transition(
            session,
            report.id,
            expected=ReportState.FORM,
            to=ReportState.CHECKING,
            reason=form.reason.value,
            note=form.note or None,
        )
    if not won:
        await _duplicate(rt, report, submitter, view_id)
        return
    if form.reason is LostReason.AT_HOME:
        await _left_at_home(rt, report.id, submitter, view_id)
        return
    await _check_choice(rt, report, submitter, view_id, form.method_ids)


async def _check_choice(
    rt: Runtime, report: LostReport, submitter: str, view_id: str, picked: tuple[str, ...]
) -> None:
    offered = {e.id: e for e in entries(report)}
    forged = [i for i in picked if i not in offered]
    if forged:
        await _refuse_forged(rt, report, submitter, view_id, forged)
        return
    try:
        listed, privilege = await asyncio.gather(
            rt.directory.list_methods(report.target_entra_id), _privilege(rt, report.target_entra_id)
        )
    except DirectoryError as exc:
        async with rt.db.session() as session:
            await lost_repo.transition(
                session,
                report.id,
                expected=ReportState.CHECKING,
                to=ReportState.ABANDONED,
                last_error="directory_unavailable",
            )
        await _directory_down(rt, view_id, submitter, report.target_slack_id, exc, "check your choice")
        return
    if not privilege.passed:  # an admin role granted since the form opened
        async with rt.db.session() as session:
            await lost_repo.transition(
                session,
                report.id,
                expected=ReportState.CHECKING,
                to=ReportState.REFUSED,
                last_error="privileged",
            )
        target = (report.target_slack_id, report.target_entra_id, report.target_upn)
        await _refuse_privileged(rt, view_id, submitter, target, privilege.evidence)
        return
    current = {m.id: m for m in listed}
    chosen = [
        _entry(current[i])
        if i in current
        # Not listed: gone, unless Graph could not be asked about its kind (a hardware token when the
        # beta list failed): then it stays owed and is deleted by id (Graph's 404 says if it was gone).
        else offered[i].with_outcome(StepOutcome.ALREADY_GONE)
        if listed.checked(offered[i].kind)
        else offered[i]
        for i in picked
    ]
    strong_left = any(m.kind.phishing_resistant and m.id not in picked for m in listed)
    async with rt.db.session() as session:
        await lost_repo.transition(
            session,
            report.id,
            expected=ReportState.CHECKING,
            to=ReportState.CONFIRMING,
            methods=entries_json(chosen),
            strong_left=strong_left,
        )
        await rt.audit.record(
            "lostkey.checked",
            actor=f"slack:{submitter}",
            target=f"entra:{report.target_entra_id}",
            details={"report_id": report.id, "reason": report.reason, "methods": _summary(chosen)},
            session=session,
        )
    await show(rt, view_id, report.id, submitter)


async def _refuse_forged(
    rt: Runtime, report: LostReport, submitter: str, view_id: str, forged: list[str]
) -> None:
    async with rt.db.session() as session:
        await lost_repo.transition(
            session,
            report.id,
            expected=ReportState.CHECKING,
            to=ReportState.REFUSED,
            last_error="forged_method",
        )
    await _audit(
        rt,
        "refused",
        f"slack:{submitter}",
        report,
        outcome="refused",
        reason="method_not_offered",
        method_ids=[f[:200] for f in forged[:10]],
    )
    await tap_common.alert(
        rt,
        f"A lost-key form from <@{submitter}> for <@{report.target_slack_id}> named sign-in methods that "
        "weren't offered to them (a forged submission). Nothing was removed.",
        loud=True,
    )
    await _set_view(
        rt,
        view_id,
        views.message_modal(
            "That choice doesn't match the sign-in methods I showed you, so I've stopped. Nothing was removed, "
            "and the helpdesk has been told."
        ),
    )


async def _left_at_home(rt: Runtime, report_id: str, submitter: str, view_id: str) -> None:
    now = rt.clock.now()
    async with rt.db.session() as session:
        await lost_repo.transition(
            session,
            report_id,
            expected=ReportState.CHECKING,
            to=ReportState.DONE,
            methods=[],
            completed_at=now,
        )
    report = await load(rt, report_id)
    assert report is not None
    await _audit(rt, "at_home", f"slack:{submitter}", report, removed=0)
    await _post_status(rt, report)
    await show(rt, view_id, report_id, submitter)
