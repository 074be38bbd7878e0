"""The lost-key journey: pick what is lost, confirm, remove it in Entra, sign out, tell everyone, replace.

A report is one row (`bot.store.models.lost_reports`) keyed by the modal's root view id, so a second
submission of the same modal finds the same row and loses every compare-and-set. The modal carries only
the row's opaque id: whose methods they are lives on the server, and every submitted method id is
checked against what the form offered and what Entra lists now. Steps Graph could not finish (throttled,
down) are finished by the durable deadline `FINISH_DEADLINE`, which honours Retry-After.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.deadlines import Deadline, RetryLater
from bot.directory import AuthMethod, DirectoryError, MethodKind, Throttled, Unavailable
from bot.domain import eligibility as rules
from bot.domain.eligibility import CheckResult
from bot.domain.tap_request import RequestKind
from bot.domain.text import safe
from bot.logs import get_logger
from bot.services import desk_inventory, identity, onboarding, tap_common
from bot.services.approvals import authorise_approver
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.slack.lost_views import FormInput, Reader
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import lost_repo
from bot.store.models.lost_reports import (
    IN_FLIGHT,
    STARTED,
    LostReason,
    LostReport,
    MethodEntry,
    ReportState,
    StepOutcome,
    entries,
    entries_json,
)

log = get_logger(__name__)

FINISH_DEADLINE = "lostkey.finish"
SAFETY_NET = timedelta(minutes=5)  # a run that died half-way is picked up by the deadline after this
FINISH_WITHIN = timedelta(hours=24)  # after this the helpdesk finishes by hand
DEFAULT_WAIT = 30.0  # seconds before retrying when Graph gave no Retry-After
SETTLE_POLL = 0.2
SETTLE_ROUNDS = 75
PLACEHOLDER = "pending"  # replacement_request_id while the request is being filed
DIRECTORY_DOWN = (
    "Microsoft Entra didn't answer just now, so I couldn't {what}. Nothing was changed. Please try again "
    "in a minute. If the key was stolen, call {support} now."
)


def _deadline_key(report_id: str) -> str:
    return f"lostkey-finish:{report_id}"


async def load(rt: Runtime, report_id: str) -> LostReport | None:
    if not report_id:
        return None
    async with rt.db.session() as session:
        return await lost_repo.get(session, report_id)


async def _audit(
    rt: Runtime,
    action: str,
    actor: str,
    report: LostReport | None,
    *,
    outcome: str = "ok",
    target: str | None = None,
    **details: Any,
) -> None:
    if report is not None:
        details = {"report_id": report.id, **details}
        target = target or f"entra:{report.target_entra_id}"
    await rt.audit.record(f"lostkey.{action}", actor=actor, target=target, outcome=outcome, details=details)


async def _refused(rt: Runtime, action: str, actor: str, target: str, reason: str, **details: Any) -> None:
    """Audit a refusal that has no report (yet) to hang it on."""
    await _audit(rt, action, actor, None, outcome="refused", target=target, reason=reason, **details)


async def _set_view(rt: Runtime, view_id: str, view: dict[str, Any]) -> None:
    try:
        await rt.slack.update_view(view_id, view)
    except SlackError as exc:  # the person closed the modal; the DM and the audit still tell the story
        log.info("lostkey.view.update_failed", error=exc.code)


# --- opening the form ----------------------------------------------------------------------------------
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


async def _may_report(rt: Runtime, user_id: str, target: str) -> str | None:
    """None when `user_id` may report for `target` (themselves, or as an approver), else the reason."""
    if target == user_id:
        return None
    _, problem = await authorise_approver(rt, user_id, None)
    if problem:
        await _refused(rt, "refused", f"slack:{user_id}", f"slack:{target}", reason="not_authorised")
        return "Only helpdesk approvers can report a key for someone else. " + problem
    return None


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


async def _privilege(rt: Runtime, entra_id: str) -> CheckResult:
    """G9: keydesk never removes methods of an account with a directory role (active or eligible) or in
    an excluded group (break-glass): those go through the admin process. Directory errors propagate."""
    excluded = list(rt.settings.excluded_group_ids)
    roles, hits = await asyncio.gather(
        rt.directory.directory_roles(entra_id),
        rt.directory.member_of_groups(entra_id, excluded) if excluded else _nothing(),
    )
    return rules.check_privilege(roles, hits & set(excluded), allow_privileged=False)


async def _nothing() -> set[str]:
    return set()


async def _refuse_privileged(
    rt: Runtime, view_id: str, user_id: str, target: tuple[str, str, str], evidence: str
) -> None:
    """`target` is (Slack id, Entra id, UPN) of the account that turned out to be privileged."""
    slack_id, entra_id, upn = target
    await _refused(
        rt, "refused", f"slack:{user_id}", f"entra:{entra_id}", "privileged_target", evidence=evidence
    )
    await tap_common.alert(
        rt,
        f"<@{slack_id}> ({safe(upn, 120)}) has administrator rights ({safe(evidence, 300)}) and a lost key "
        "was reported for them through keydesk. keydesk changes nothing on admin accounts: switch the key "
        "off and end their sessions through the admin process now.",
        loud=True,
    )
    whose = "Your account has" if slack_id == user_id else f"<@{slack_id}>'s account has"
    text = (
        f"{whose} administrator rights, so for safety I can't change its sign-in methods here. I've alerted "
        f"the helpdesk to switch the key off through the admin process. If the key was stolen, call "
        f"{safe(rt.settings.support_contact, 200)} now."
    )
    await _set_view(rt, view_id, views.message_modal(text))


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


def _entry(method: AuthMethod) -> MethodEntry:
    return MethodEntry(
        id=method.id,
        kind=method.kind.value,
        name=method.display_name,
        model=method.model,
        aaguid=method.aaguid,
        created=method.created,
        detail=method.detail,
        strong=method.kind.phishing_resistant,
    )


async def _directory_down(
    rt: Runtime, view_id: str, user_id: str, target: str, exc: DirectoryError, what: str
) -> None:
    log.warning("lostkey.directory_unavailable", error=type(exc).__name__)
    await _audit(
        rt,
        "failed",
        f"slack:{user_id}",
        None,
        outcome="failed",
        target=f"slack:{target}",
        reason="directory_unavailable",
        error=type(exc).__name__,
        step=what,
    )
    text = DIRECTORY_DOWN.format(what=what, support=rt.settings.support_contact)
    await _set_view(rt, view_id, views.message_modal(text))


# --- the form is submitted -----------------------------------------------------------------------------
async def _owned(
    rt: Runtime, report_id: str, submitter: str, view_id: str, root_id: str
) -> LostReport | None:
    """The report, if `submitter` opened it in this very modal; otherwise refuse, audit and say so."""
    report = await load(rt, report_id)
    if report is not None and report.reporter_slack_id == submitter and report.idempotency_key == root_id:
        return report
    reason = "not_your_report" if report is None or report.reporter_slack_id != submitter else "other_modal"
    await _refused(rt, "refused", f"slack:{submitter}", f"report:{report_id[:64]}", reason)
    await _set_view(rt, view_id, views.message_modal("That form isn't yours. Nothing was changed."))
    return None


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


async def _duplicate(rt: Runtime, report: LostReport, submitter: str, view_id: str) -> None:
    await _audit(rt, "submit.duplicate", f"slack:{submitter}", report, outcome="refused", state=report.state)
    await show_when_settled(rt, view_id, report.id, submitter)


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


def _summary(items: list[MethodEntry]) -> list[dict[str, Any]]:
    """KEY-1: name, AAGUID and date of each method, for the audit log."""
    return [
        {
            "id": e.id[:200],
            "kind": e.kind,
            "name": e.name,
            "aaguid": e.aaguid,
            "created": e.created.isoformat() if e.created else None,
            "outcome": e.outcome.value,
        }
        for e in items
    ]


# --- left at home --------------------------------------------------------------------------------------
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


# --- showing the modal from the row --------------------------------------------------------------------
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


# --- confirmed: remove, sign out, read back ------------------------------------------------------------
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


@dataclass(frozen=True)
class Run:
    """What one pass over the steps achieved, and how long Graph asked us to wait before the next."""

    items: list[MethodEntry]
    revoke: StepOutcome
    revoke_error: str | None
    verified: bool
    strong_left: bool | None
    wait: float | None

    @property
    def complete(self) -> bool:
        return self.verified and self.revoke.finished and all(e.outcome.finished for e in self.items)


class _Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def note(self, exc: DirectoryError) -> str:
        if isinstance(exc, Throttled):
            self.seconds.append(max(1.0, exc.retry_after))
            return "throttled"
        retry = exc.retry_after if isinstance(exc, Unavailable) else None
        self.seconds.append(max(1.0, retry) if retry else DEFAULT_WAIT)
        return "unavailable"

    @property
    def longest(self) -> float | None:
        return max(self.seconds) if self.seconds else None


RETRYABLE = (Throttled, Unavailable)


async def run_steps(rt: Runtime, report_id: str) -> Run:
    """Delete what is still owed, sign out, read back. Idempotent: safe to run again after a crash."""
    report = await load(rt, report_id)
    assert report is not None
    user, waits = report.target_entra_id, _Waits()
    listed = await _listed(rt, user, waits)
    items, removed_now = await _delete_owed(rt, report, listed, waits)
    await desk_inventory.mark_lost(  # the key inventory follows: those keys are lost (never raises)
        rt,
        entra_user_id=user,
        method_ids=[i.id for i in items if i.kind == MethodKind.FIDO2 and i.outcome.succeeded],
        actor=f"slack:{report.reporter_slack_id}",
        reason=report.reason or "lost",
    )
    revoke, revoke_error = StepOutcome(report.revoke_outcome), report.revoke_error
    if not revoke.finished or removed_now:  # a removal after an earlier sign-out needs another one
        revoke, revoke_error = await _revoke(rt, report, waits)
    items, verified, strong_left = await _read_back(rt, report, items, waits)
    return Run(items, revoke, revoke_error, verified, strong_left, waits.longest)


async def _listed(rt: Runtime, user: str, waits: _Waits) -> dict[str, AuthMethod] | None:
    try:
        listed = await rt.directory.list_methods(user)
    except RETRYABLE as exc:
        waits.note(exc)
        return None  # deletes go ahead by id: the ids were checked against this user's list at submit
    # A kind Graph was not asked about (hardware tokens, beta) is not "gone": delete by id, as above.
    return {m.id: m for m in listed} if not listed.unchecked else None


async def _delete_owed(
    rt: Runtime, report: LostReport, listed: dict[str, AuthMethod] | None, waits: _Waits
) -> tuple[list[MethodEntry], bool]:
    items, removed_now = [], False
    for entry in entries(report):
        if entry.outcome.finished:
            items.append(entry)
            continue
        if listed is not None and entry.id not in listed:
            done = entry.with_outcome(
                StepOutcome.REMOVED if entry.outcome is StepOutcome.STILL_LISTED else StepOutcome.ALREADY_GONE
            )
        else:
            done = await _delete_one(rt, report, entry, waits)
            removed_now = removed_now or done.outcome is StepOutcome.REMOVED
        if done.outcome is not entry.outcome or done.error != entry.error:
            await _audit_method(rt, report, done)
        items.append(done)
    return items, removed_now


async def _delete_one(rt: Runtime, report: LostReport, entry: MethodEntry, waits: _Waits) -> MethodEntry:
    method = AuthMethod(
        id=entry.id,
        kind=MethodKind(entry.kind),
        display_name=entry.name,
        created=entry.created,
        model=entry.model,
        aaguid=entry.aaguid,
    )
    try:
        deleted = await rt.directory.delete_method(report.target_entra_id, method)
    except RETRYABLE as exc:
        return entry.with_outcome(StepOutcome.PENDING, waits.note(exc))
    except DirectoryError as exc:
        return entry.with_outcome(StepOutcome.REFUSED, str(exc)[:150])
    return entry.with_outcome(StepOutcome.REMOVED if deleted else StepOutcome.ALREADY_GONE)


_METHOD_ACTION = {
    StepOutcome.REMOVED: ("method.removed", "ok"),
    StepOutcome.ALREADY_GONE: ("method.already_gone", "ok"),
    StepOutcome.PENDING: ("method.deferred", "failed"),
    StepOutcome.STILL_LISTED: ("method.still_listed", "failed"),
    StepOutcome.REFUSED: ("method.refused", "failed"),
}


async def _audit_method(rt: Runtime, report: LostReport, entry: MethodEntry) -> None:
    action, outcome = _METHOD_ACTION[entry.outcome]
    await _audit(
        rt, action, "system", report, outcome=outcome, method=_summary([entry])[0], error=entry.error
    )


async def _revoke(rt: Runtime, report: LostReport, waits: _Waits) -> tuple[StepOutcome, str | None]:
    try:
        await rt.directory.revoke_sessions(report.target_entra_id)
    except RETRYABLE as exc:
        error = waits.note(exc)
        await _audit(rt, "sessions.deferred", "system", report, outcome="failed", error=error)
        return StepOutcome.PENDING, error
    except DirectoryError as exc:
        await _audit(rt, "sessions.refused", "system", report, outcome="failed", error=str(exc)[:150])
        return StepOutcome.REFUSED, str(exc)[:150]
    await _audit(rt, "sessions.revoked", "system", report)
    return StepOutcome.DONE, None


async def _read_back(
    rt: Runtime, report: LostReport, items: list[MethodEntry], waits: _Waits
) -> tuple[list[MethodEntry], bool, bool | None]:
    """List again: what we removed must be gone. Also learn whether a phishing-resistant method is left."""
    try:
        after = await rt.directory.list_methods(report.target_entra_id)
    except RETRYABLE as exc:
        waits.note(exc)
        return items, False, report.strong_left
    still = {m.id for m in after}
    checked = []
    for item in items:
        if item.outcome.succeeded and item.id in still:
            item = item.with_outcome(StepOutcome.STILL_LISTED)
            await _audit_method(rt, report, item)
        checked.append(item)
    verified = not any(i.outcome is StepOutcome.STILL_LISTED for i in checked)
    strong_left = any(m.kind.phishing_resistant for m in after)
    if verified:
        await _audit(rt, "verified", "system", report, strong_left=strong_left)
    else:
        waits.seconds.append(DEFAULT_WAIT)
    return checked, verified, strong_left


async def _settle(rt: Runtime, report: LostReport, run: Run, *, reschedule: bool) -> ReportState | None:
    """Record the run: DONE when nothing is owed, else PARTIAL (the deadline comes back after the wait).
    None when the report moved on meanwhile (handed to the helpdesk): nothing is recorded then."""
    now = rt.clock.now()
    values: dict[str, Any] = {
        "methods": entries_json(run.items),
        "revoke_outcome": run.revoke.value,
        "revoke_error": run.revoke_error,
        "verified": run.verified,
        "strong_left": run.strong_left,
    }
    if run.complete:
        state, values["completed_at"] = ReportState.DONE, now
    else:
        state = ReportState.PARTIAL
    key = _deadline_key(report.id)
    async with rt.db.session() as session:
        if not await lost_repo.transition(
            session, report.id, expected=[ReportState.RUNNING, ReportState.PARTIAL], to=state, **values
        ):
            return None
        if run.complete:
            await rt.deadlines.cancel(key, session=session)
        elif reschedule:
            due = now + timedelta(seconds=run.wait or DEFAULT_WAIT)
            payload = {"report_id": report.id}
            await rt.deadlines.schedule(FINISH_DEADLINE, due, payload, key=key, replace=True, session=session)
        await rt.audit.record(
            "lostkey.completed" if run.complete else "lostkey.partial",
            actor="system",
            target=f"entra:{report.target_entra_id}",
            outcome="ok" if run.complete else "failed",
            details={
                "report_id": report.id,
                "methods": [i.outcome.value for i in run.items],
                "sessions": run.revoke.value,
                "verified": run.verified,
                "retry_in": run.wait,
            },
            session=session,
        )
    return state


# --- telling people -------------------------------------------------------------------------------------
async def _manager_slack_id(rt: Runtime, entra_id: str) -> str | None:
    try:
        manager = await rt.directory.get_manager(entra_id)
    except DirectoryError as exc:
        log.warning("lostkey.manager.lookup_failed", error=type(exc).__name__)
        return None
    if manager is None:
        return None
    for email in filter(None, (manager.mail, manager.user_principal_name)):
        try:
            person = await rt.slack.user_by_email(email)
        except SlackError:
            continue
        if person is not None and not person.deleted and not person.is_bot:
            return person.id
    return None


async def _notify_started(rt: Runtime, report_id: str) -> None:
    """IDV-6: the person (DM and mail), their manager and the helpdesk hear about every removal."""
    report = await load(rt, report_id)
    assert report is not None
    dm = await _post_status(rt, report)
    manager = await _dm_manager(rt, report)
    await tap_common.alert(rt, views.helpdesk_alert(report), loud=report.reason == LostReason.STOLEN)
    mailed = await _mail(rt, report)
    await _audit(
        rt,
        "notified",
        "system",
        report,
        dm=dm,
        manager=manager,
        email=mailed,
        loud=report.reason == LostReason.STOLEN,
    )


async def _post_status(rt: Runtime, report: LostReport) -> bool:
    support = rt.settings.support_contact
    text, blocks = (
        views.at_home_dm(report) if report.reason == LostReason.AT_HOME else views.status_dm(report, support)
    )
    try:
        if report.dm_channel and report.dm_ts:
            await rt.slack.update(PostedMessage(report.dm_channel, report.dm_ts), text, blocks)
            return True
        posted = await rt.slack.post_dm(report.target_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("lostkey.dm_failed", error=exc.code)
        return False
    async with rt.db.session() as session:
        await lost_repo.set_fields(session, report.id, dm_channel=posted.channel, dm_ts=posted.ts)
    return True


async def _dm_manager(rt: Runtime, report: LostReport) -> bool:
    if not report.manager_slack_id:
        return False
    text, blocks = views.manager_notice(report)
    try:
        await rt.slack.post_dm(report.manager_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("lostkey.manager_dm_failed", error=exc.code)
        return False
    return True


async def _mail(rt: Runtime, report: LostReport) -> bool:
    mailbox = rt.settings.notify_mailbox
    if not mailbox:
        return False
    subject, text = views.mail_text(report, rt.settings.support_contact)
    try:
        await rt.directory.send_mail(mailbox, [report.target_upn], subject, text)
    except DirectoryError as exc:
        log.warning("lostkey.mail_failed", error=type(exc).__name__)
        return False
    return True


# --- the durable finish ---------------------------------------------------------------------------------
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


# --- what comes next: a new key, the desk, a pass for today, "this wasn't me" ---------------------------
async def _for_target(rt: Runtime, clicker: str, report_id: str, action: str) -> LostReport | None:
    report = await load(rt, report_id)
    if report is not None and report.target_slack_id == clicker:
        return report
    await _refused(rt, f"{action}.refused", f"slack:{clicker}", f"report:{report_id[:64]}", "not_the_person")
    await tap_common.tell(rt, clicker, "Only the person whose key it is can choose this.")
    return None


async def choose_new_key(rt: Runtime, clicker: str, report_id: str) -> None:
    """'Get a new key': a replacement pass request through the normal approval (IDV-1 still applies)."""
    report = await _for_target(rt, clicker, report_id, "replacement")
    if report is None:
        return
    if report.reason == LostReason.AT_HOME or ReportState(report.state) not in STARTED:
        await tap_common.tell(rt, clicker, "There's no removed key to replace on this report.")
        return
    await _request_pass(rt, report, RequestKind.REPLACEMENT, "replacement")


async def ask_pass_today(rt: Runtime, clicker: str, report_id: str) -> None:
    """'Left at home': a pass for today through the normal approval, marked as such on the card; it lasts
    KEYDESK_TODAY_PASS_MINUTES and starts no key setup (see registration.start)."""
    report = await _for_target(rt, clicker, report_id, "pass_today")
    if report is None:
        return
    if report.reason != LostReason.AT_HOME:
        await tap_common.tell(rt, clicker, "This report isn't about a key left at home.")
        return
    await _request_pass(rt, report, RequestKind.FORGOTTEN, "pass_today")


async def _request_pass(rt: Runtime, report: LostReport, kind: RequestKind, action: str) -> None:
    async with rt.db.session() as session:
        first = report.desk_pickup_at is None and await lost_repo.claim_once(
            session, report.id, "replacement_request_id", PLACEHOLDER
        )
    if not first:
        await tap_common.tell(rt, report.target_slack_id, "You've already chosen; see the messages above.")
        return
    outcome = await onboarding.request_pass(rt, report.target_slack_id, kind=kind)
    async with rt.db.session() as session:
        await lost_repo.set_fields(session, report.id, replacement_request_id=outcome.request_id)
    await _audit(
        rt,
        f"{action}.requested" if outcome.request_id else f"{action}.refused",
        f"slack:{report.target_slack_id}",
        report,
        outcome="ok" if outcome.request_id else "refused",
        request_id=outcome.request_id,
        refused=outcome.refused,
        kind=kind.value,
    )
    latest = await load(rt, report.id)
    if latest is not None:
        await _post_status(rt, latest)


async def choose_desk_pickup(rt: Runtime, clicker: str, report_id: str) -> None:
    """'Pick one up at the desk': recorded for the desk (the agent programs the key there)."""
    report = await _for_target(rt, clicker, report_id, "desk_pickup")
    if report is None:
        return
    if report.reason == LostReason.AT_HOME or ReportState(report.state) not in STARTED:
        await tap_common.tell(rt, clicker, "There's no removed key to replace on this report.")
        return
    async with rt.db.session() as session:
        first = report.replacement_request_id is None and await lost_repo.claim_once(
            session, report.id, "desk_pickup_at", rt.clock.now()
        )
    if not first:
        await tap_common.tell(rt, clicker, "You've already chosen; see the messages above.")
        return
    await _audit(rt, "desk_pickup", f"slack:{clicker}", report)
    await tap_common.alert(
        rt,
        f"<@{clicker}> ({safe(report.target_upn, 120)}) will pick up a replacement security key at "
        f"the desk (lost-key report {report.id[:8]}). Check their photo ID before handing it over.",
    )
    latest = await load(rt, report.id)
    if latest is not None:
        await _post_status(rt, latest)


async def not_me(rt: Runtime, clicker: str, report_id: str) -> None:
    """'This wasn't me' / 'This looks wrong' from the person or their manager: a security alert."""
    report = await load(rt, report_id)
    if report is None or clicker not in (report.target_slack_id, report.manager_slack_id):
        await _refused(
            rt,
            "not_me.refused",
            f"slack:{clicker}",
            f"report:{report_id[:64]}",
            reason="not_the_person_or_manager",
        )
        await tap_common.tell(rt, clicker, "Only the person or their manager can flag this report.")
        return
    await _audit(rt, "not_me", f"slack:{clicker}", report, reporter=report.reporter_slack_id)
    role = "the person" if clicker == report.target_slack_id else "their manager"
    await tap_common.alert(
        rt,
        f"<@{clicker}> ({role}) says the lost-key report for <@{report.target_slack_id}>, made by "
        f"<@{report.reporter_slack_id}>, looks wrong. Someone may be misusing their Slack account. What was "
        f"removed stays removed; verify the person by phone before any replacement.",
        loud=True,
    )
    await tap_common.tell(
        rt,
        clicker,
        "Thanks. I've alerted the helpdesk with a security alert; they'll be in "
        "touch. Nothing else changes until they've checked.",
    )
