"""Opening the form: who may report, what Entra lists, and the report row behind the modal."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.exc import IntegrityError

from bot.directory import AuthMethod, DirectoryError
from bot.logs import get_logger
from bot.services import identity, tap_common
from bot.services.lost_key.common import _audit, _directory_down, _entry, _refused, _set_view
from bot.services.lost_key.guards import _may_report, _privilege, _refuse_privileged
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.slack.lost_views import Reader
from bot.slack.messenger import SlackError
from bot.store import lost_repo
from bot.store.models.lost_reports import LostReport, ReportState, StepOutcome, entries_json

log = get_logger(__name__)


async def open_lost_key_modal(
    rt: Runtime,
    user_id: str,
    trigger_id: str,
    *,
    for_user: str | None = None,
    approver: str | None = None,
) -> None:
    """Open the lost-key form for `user_id`, about their own methods or, for a helpdesk approver, about
    `for_user`'s. `approver`, when given, must be `user_id` (the person who sees the modal); authority is
    always checked here, whatever the caller checked."""
    target = for_user or user_id
    try:  # a trigger_id lives about 3 s: open at once, fill in after the slow lookups
        view_id = await rt.slack.open_view(trigger_id, views.working_modal("Looking up the sign-in methods…"))
    except SlackError as exc:
        log.warning("lostkey.open_failed", error=exc.code)
        await tap_common.tell(rt, user_id, "Slack didn't let me open the lost-key window. Please try again.")
        return
    if approver is not None and approver != user_id:
        await _refused(rt, "refused", f"slack:{user_id}", f"slack:{target}", reason="approver_mismatch")
        await _set_view(rt, view_id, views.message_modal("Only the approver themselves can do this."))
        return
    problem = await _may_report(rt, user_id, target)
    if problem:
        await _set_view(rt, view_id, views.message_modal(problem))
        return
    await _fill_form(rt, view_id, user_id, target)


async def helpdesk_lost(rt: Runtime, approver_slack_id: str, target_slack_id: str, trigger_id: str) -> None:
    """`/keydesk lost @person`: an approver reports for someone who phoned in."""
    await open_lost_key_modal(
        rt, approver_slack_id, trigger_id, for_user=target_slack_id, approver=approver_slack_id
    )


async def _fill_form(rt: Runtime, view_id: str, user_id: str, target: str) -> None:
    support = rt.settings.support_contact
    try:
        who = await identity.resolve(rt, target)
        methods, privilege = await asyncio.gather(
            rt.directory.list_methods(who.entra.id), _privilege(rt, who.entra.id)
        )
    except identity.IdentityRefused as refusal:
        await _refused(rt, "refused", f"slack:{user_id}", f"slack:{target}", reason=refusal.reason.value)
        text = (
            refusal.user_message(support)
            if target == user_id
            else (f"I can't report for <@{target}>: {refusal.reason.value.replace('_', ' ')}.")
        )
        await _set_view(rt, view_id, views.message_modal(text))
        return
    except DirectoryError as exc:
        await _directory_down(rt, view_id, user_id, target, exc, "look up the sign-in methods")
        return
    name = who.entra.display_name or who.slack.display
    reader = Reader(name, target == user_id)
    if not privilege.passed:
        target_ids = (who.slack.id, who.entra.id, who.entra.user_principal_name)
        await _refuse_privileged(rt, view_id, user_id, target_ids, privilege.evidence)
        return
    keys, others = views.removable(methods)
    if not keys and not others:
        await _audit(rt, "nothing_registered", f"slack:{user_id}", None, target=f"entra:{who.entra.id}")
        await _set_view(rt, view_id, views.nothing_registered_modal(reader, support))
        return
    report = await _new_report(rt, view_id, user_id, who, keys + others)
    if report is None:
        return  # this modal already has a report: it was filled in already
    await _set_view(rt, view_id, views.form_modal(report.id, methods, reader))


async def _new_report(
    rt: Runtime, view_id: str, user_id: str, who: identity.Identity, offered: list[AuthMethod]
) -> LostReport | None:
    report = LostReport(
        id=str(uuid.uuid4()),
        idempotency_key=view_id[:64],
        state=ReportState.FORM.value,
        version=0,
        target_slack_id=who.slack.id,
        target_entra_id=who.entra.id,
        target_name=(who.entra.display_name or who.slack.display)[:200],
        target_upn=who.entra.user_principal_name[:256],
        reporter_slack_id=user_id,
        methods=entries_json([_entry(m) for m in offered]),  # what the form offers; narrowed on submit
        revoke_outcome=StepOutcome.PENDING.value,
        verified=False,
        created_at=rt.clock.now(),
    )
    async with rt.db.session() as session:
        try:
            await lost_repo.add(session, report)
        except IntegrityError:
            return None
        await rt.audit.record(
            "lostkey.opened",
            actor=f"slack:{user_id}",
            target=f"entra:{who.entra.id}",
            details={
                "report_id": report.id,
                "offered": len(offered),
                "for_someone_else": report.for_someone_else,
            },
            session=session,
        )
    return report
