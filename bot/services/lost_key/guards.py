"""Who may act on a report: the reporter in their own modal, an approver for someone else, no admin (G9)."""

from __future__ import annotations

import asyncio

from bot.domain import eligibility as rules
from bot.domain.eligibility import CheckResult
from bot.domain.text import safe
from bot.services import tap_common
from bot.services.approvals import authorise_approver
from bot.services.lost_key.common import _refused, _set_view, load
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.store.models.lost_reports import LostReport


async def _may_report(rt: Runtime, user_id: str, target: str) -> str | None:
    """None when `user_id` may report for `target` (themselves, or as an approver), else the reason."""
    if target == user_id:
        return None
    _, problem = await authorise_approver(rt, user_id, None)
    if problem:
        await _refused(rt, "refused", f"slack:{user_id}", f"slack:{target}", reason="not_authorised")
        return "Only helpdesk approvers can report a key for someone else. " + problem
    return None


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
