"""Security alerts leave Slack too (security.md IDV-6): someone who took over the helpdesk channel, or a
Slack outage, must not be able to silence them.

Every loud alert is written to the log at error level (`security.alert`) and, when
KEYDESK_SECURITY_WEBHOOK_URL is set, queued as a durable deadline that POSTs it to the security team's
collector: out within one pump tick, retried across restarts (after Retry-After when the collector
says so, else with backoff), and given up (with an error in the log) after MAX_AGE.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from bot.deadlines import Deadline, RetryLater
from bot.domain.text import mrkdwn_to_plain
from bot.logs import get_logger
from bot.security_webhook import WebhookFailed
from bot.services.runtime import Runtime

log = get_logger(__name__)

FORWARD_DEADLINE = "security.alert.forward"
MAX_AGE = timedelta(hours=24)
BACKOFF_MIN_SECONDS, BACKOFF_MAX_SECONDS = 5.0, 600.0
SUMMARY_MAX = 1024  # what pagers show (PagerDuty's summary limit); the full text rides along


def alert_body(rt: Runtime, text: str, alert_id: str, raised_at: datetime) -> dict[str, Any]:
    """The JSON a collector receives. `id` is stable across retries, so a receiver can drop repeats."""
    summary = mrkdwn_to_plain(text)
    return {
        "source": "keydesk",
        "type": "security_alert",
        "severity": "critical",
        "id": alert_id,
        "raised_at": raised_at.isoformat(),
        "summary": summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 1] + "…",
        "text": text,
        "slack_team": rt.me.team_id or None,
        "helpdesk_channel": rt.settings.helpdesk_channel or None,
    }


async def forward(rt: Runtime, text: str) -> None:
    """Send a security alert (Slack mrkdwn) out of Slack. Never raises: an alert must not stop the work
    that raised it."""
    now, alert_id = rt.clock.now(), str(uuid.uuid4())
    body = alert_body(rt, text, alert_id, now)
    log.error("security.alert", alert_id=alert_id, summary=body["summary"])
    if rt.security_webhook is None:
        return
    try:
        await rt.deadlines.schedule(FORWARD_DEADLINE, now, {"alert": body}, key=f"security-alert:{alert_id}")
    except Exception as exc:  # the database is down: one direct try, so the alert still has a way out
        log.error("security.alert.not_queued", alert_id=alert_id, error=type(exc).__name__)
        try:
            await rt.security_webhook.send(body)
        except Exception as failed:  # whatever it is, the Slack alert must still go out
            reason = failed.reason if isinstance(failed, WebhookFailed) else type(failed).__name__
            log.error("security.alert.lost", alert_id=alert_id, error=reason)


async def deliver(rt: Runtime, deadline: Deadline) -> None:
    body: dict[str, Any] = deadline.payload["alert"]
    if rt.security_webhook is None:
        log.error("security.alert.undeliverable", alert_id=body.get("id"), reason="no webhook configured now")
        return
    try:
        await rt.security_webhook.send(body)
    except WebhookFailed as exc:
        age = rt.clock.now() - datetime.fromisoformat(str(body["raised_at"]))
        if age >= MAX_AGE:
            log.error("security.alert.given_up", alert_id=body.get("id"), error=exc.reason)
            return
        wait = _backoff(age) if exc.retry_after is None else _bounded(exc.retry_after)
        log.warning(
            "security.alert.retry", alert_id=body.get("id"), error=exc.reason, retry_in=round(wait, 1)
        )
        raise RetryLater(wait, exc.reason) from None
    log.info("security.alert.delivered", alert_id=body.get("id"), attempt=deadline.attempts)


def _backoff(age: timedelta) -> float:
    """Half the alert's age, kept within bounds: quick while the collector hiccups, calm in an outage
    (deadline attempts are not used: a long outage would exhaust them long before MAX_AGE)."""
    return _bounded(age.total_seconds() / 2)


def _bounded(seconds: float) -> float:
    """Between 5 s and 10 min: a Retry-After of 0 would retry on every pump tick, a day outlast MAX_AGE."""
    return min(BACKOFF_MAX_SECONDS, max(BACKOFF_MIN_SECONDS, seconds))


def register(rt: Runtime) -> None:
    async def handler(deadline: Deadline) -> None:
        await deliver(rt, deadline)

    rt.deadlines.register(FORWARD_DEADLINE, handler)
