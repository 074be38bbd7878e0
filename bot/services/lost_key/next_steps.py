"""What comes next: a new key, a pickup at the desk, a pass for today, or "this wasn't me"."""

from __future__ import annotations

from bot.domain.tap_request import RequestKind
from bot.domain.text import safe
from bot.services import onboarding, tap_common
from bot.services.lost_key.common import _audit, _refused, load
from bot.services.lost_key.notices import _post_status
from bot.services.runtime import Runtime
from bot.store import lost_repo
from bot.store.models.lost_reports import STARTED, LostReason, LostReport, ReportState

PLACEHOLDER = "pending"  # replacement_request_id while the request is being filed


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
