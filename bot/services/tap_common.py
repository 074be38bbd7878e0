"""Keeping every person's view of a TAP request in step with the database, and raising alerts."""

from __future__ import annotations

from bot.directory import DirectoryError
from bot.logs import get_logger
from bot.services import security_alerts
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack import tap_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import tap_repo
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)


async def load(rt: Runtime, request_id: str) -> TapRequest | None:
    async with rt.db.read() as session:
        return await tap_repo.get(session, request_id)


async def refresh(rt: Runtime, request_id: str, *, card: bool = True, dm: bool = True) -> TapRequest | None:
    """Re-render the helpdesk card and the requester's DM from the current row."""
    request = await load(rt, request_id)
    if request is None:
        return None
    if card:
        await _refresh_card(rt, request)
    if dm:
        await _refresh_dm(rt, request)
    return request


async def _refresh_card(rt: Runtime, request: TapRequest) -> None:
    if not (request.card_channel and request.card_ts):
        return
    text, blocks = tap_views.card(request, rt.clock.now(), rt.settings.verification_choices)
    try:
        await rt.slack.update(PostedMessage(request.card_channel, request.card_ts), text, blocks)
    except SlackError as exc:
        log.warning("tap.card.update_failed", request=request.id, error=exc.code)


async def _refresh_dm(rt: Runtime, request: TapRequest) -> None:
    text, blocks = tap_views.dm_status(request, rt.settings.support_contact)
    try:
        if request.dm_channel and request.dm_ts:
            await rt.slack.update(PostedMessage(request.dm_channel, request.dm_ts), text, blocks)
            return
        posted = await rt.slack.post_dm(request.target_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("tap.dm.update_failed", request=request.id, error=exc.code)
        return
    async with rt.db.session() as session:
        await tap_repo.set_fields(session, request.id, dm_channel=posted.channel, dm_ts=posted.ts)


async def post_card(rt: Runtime, request: TapRequest) -> None:
    channel = rt.settings.helpdesk_channel
    if not channel:
        return
    text, blocks = tap_views.card(request, rt.clock.now(), rt.settings.verification_choices)
    posted = await rt.slack.post(channel, text, blocks)
    async with rt.db.session() as session:
        await tap_repo.set_fields(session, request.id, card_channel=posted.channel, card_ts=posted.ts)


async def alert(rt: Runtime, text: str, *, loud: bool = False, thread_of: TapRequest | None = None) -> None:
    """Tell the helpdesk channel; a loud alert is a security alert (mentions the channel) and also
    leaves Slack (the log, and the security webhook when set)."""
    if loud:
        await security_alerts.forward(rt, text)
    channel = rt.settings.helpdesk_channel
    if not channel:
        log.warning("helpdesk.alert.no_channel", text=text[:200])
        return
    prefix = "<!channel> :rotating_light: *Security alert.* " if loud else ":warning: "
    body = prefix + text
    thread = thread_of.card_ts if thread_of is not None and thread_of.card_channel == channel else None
    try:
        await rt.slack.post(channel, body[:3000], [b.section(body)], thread_ts=thread)
    except SlackError as exc:
        log.error("helpdesk.alert.failed", error=exc.code)


async def mail_person(rt: Runtime, request: TapRequest, subject: str, body: str, *, event: str) -> bool:
    """Mail the request's person from KEYDESK_NOTIFY_MAILBOX (a channel a taken-over Slack account doesn't
    control). False when no mailbox is set, the person has no UPN on record, or Graph refused (logged as
    `event`); a notice never fails the work it reports."""
    mailbox, upn = rt.settings.notify_mailbox, (request.target_profile or {}).get("upn")
    if not mailbox or not upn:
        return False
    try:
        await rt.directory.send_mail(mailbox, [str(upn)], subject, body)
    except DirectoryError as exc:
        log.warning(event, request=request.id, error=type(exc).__name__)
        return False
    return True


async def tell(rt: Runtime, user_id: str, text: str) -> None:
    """A short DM to a person (refusals, confirmations); never carries a secret."""
    try:
        await rt.slack.post_dm(user_id, text, [b.section(text)])
    except SlackError as exc:
        log.warning("dm.failed", user=user_id, error=exc.code)
