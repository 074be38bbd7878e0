"""Telling people (IDV-6): the person's status DM and mail, their manager and the helpdesk."""

from __future__ import annotations

from bot.directory import DirectoryError
from bot.logs import get_logger
from bot.services import tap_common
from bot.services.lost_key.common import _audit, load
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import lost_repo
from bot.store.models.lost_reports import LostReason, LostReport

log = get_logger(__name__)


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
