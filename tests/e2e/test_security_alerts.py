"""Security alerts leave Slack (security.md IDV-6): the log, and the security team's collector through
KEYDESK_SECURITY_WEBHOOK_URL, delivered by a durable deadline that retries until the collector takes it."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta

from sqlalchemy import select

from bot.sandbox.alert_collector import AlertCollector
from bot.sandbox.company import Company
from bot.sandbox.stack import Stack
from bot.services import security_alerts
from bot.store.models.deadlines import DeadlineRow

from . import test_tap_canary
from .conftest import COLLECTOR_AUTHORIZATION
from .helpers import (
    SECURITY_ALERT,
    ShiftableClock,
    ask_for_pass,
    eventually,
    message_text,
    settle,
    wait_channel,
)
from .test_abuse_review import database_down

debug_logs = test_tap_canary.debug_logs  # the fixture: production logging at DEBUG, captured


async def admin_asks_for_a_pass(stack: Stack, company: Company) -> str:
    """Lin, a Global Administrator, asks in Slack: refused, and a security alert goes to the channel."""
    await ask_for_pass(stack, company.lin.slack_id)
    alert = await wait_channel(stack.slack, SECURITY_ALERT)
    return message_text(alert)


async def deadline_kinds(stack: Stack) -> list[str]:
    async with stack.keydesk.rt.db.session() as session:
        return list((await session.execute(select(DeadlineRow.kind))).scalars().all())


async def test_a_security_alert_reaches_the_collector(
    stack: Stack, company: Company, alert_collector: AlertCollector, debug_logs: io.StringIO
) -> None:
    in_slack = await admin_asks_for_a_pass(stack, company)

    [body] = await alert_collector.wait_for(1)
    [request] = alert_collector.received
    assert request.headers["Authorization"] == COLLECTOR_AUTHORIZATION
    assert request.headers["Content-Type"].startswith("application/json")
    assert body["source"] == "keydesk" and body["type"] == "security_alert" and body["severity"] == "critical"
    assert body["text"] in in_slack  # the same words as the channel read, without the @channel ping
    summary = body["summary"]
    assert f"@{company.lin.slack_id} ({company.lin.email}) asked for a pass" in summary
    assert "<" not in summary and "*" not in summary and ":rotating_light:" not in summary
    assert uuid.UUID(body["id"]) and body["helpdesk_channel"] == stack.settings.helpdesk_channel
    assert f'"alert_id": "{body["id"]}"' in debug_logs.getvalue()  # the log line that always goes out
    assert '"event": "security.alert"' in debug_logs.getvalue()
    assert security_alerts.FORWARD_DEADLINE in await deadline_kinds(stack)  # delivered by a durable deadline


async def test_a_collector_outage_is_retried_with_the_same_alert_id(
    stack: Stack, company: Company, alert_collector: AlertCollector, app_clock: ShiftableClock
) -> None:
    alert_collector.fail_next(503, times=2)

    await admin_asks_for_a_pass(stack, company)
    for tried in range(2):  # each failure waits at least BACKOFF_MIN_SECONDS before the next try
        await eventually(lambda n=tried: len(alert_collector.received) > n, "another try")  # type: ignore[misc]
        app_clock.advance(timedelta(seconds=security_alerts.BACKOFF_MIN_SECONDS + 1))

    [body] = await alert_collector.wait_for(1)
    assert [r.answered for r in alert_collector.received] == [503, 503, 202]
    assert {r.body["id"] for r in alert_collector.received} == {body["id"]}


async def test_the_collector_s_retry_after_is_honoured(
    stack: Stack, company: Company, alert_collector: AlertCollector, app_clock: ShiftableClock
) -> None:
    alert_collector.fail_next(429, retry_after=120)

    await admin_asks_for_a_pass(stack, company)
    await eventually(lambda: len(alert_collector.received) == 1, "the first try")
    app_clock.advance(timedelta(seconds=60))
    await settle(stack, quiet=0.6)
    assert len(alert_collector.received) == 1  # not before the 120 s it asked for

    app_clock.advance(timedelta(seconds=61))
    await alert_collector.wait_for(1)
    assert [r.answered for r in alert_collector.received] == [429, 202]


async def test_a_retry_after_of_zero_does_not_hammer_the_collector(
    stack: Stack, company: Company, alert_collector: AlertCollector, app_clock: ShiftableClock
) -> None:
    alert_collector.fail_next(503, retry_after=0)

    await admin_asks_for_a_pass(stack, company)
    await eventually(lambda: len(alert_collector.received) == 1, "the first try")
    await settle(stack, quiet=0.6)  # three pump ticks
    assert len(alert_collector.received) == 1

    app_clock.advance(timedelta(seconds=security_alerts.BACKOFF_MIN_SECONDS + 1))
    await alert_collector.wait_for(1)
    assert [r.answered for r in alert_collector.received] == [503, 202]


async def test_with_the_database_down_the_alert_is_sent_directly(
    stack: Stack, alert_collector: AlertCollector
) -> None:
    with database_down(stack):
        await security_alerts.forward(stack.keydesk.rt, "<@U0EVE> flagged *something*")

    [body] = await alert_collector.wait_for(1)
    assert body["summary"] == "@U0EVE flagged something"


async def test_without_a_webhook_alerts_stay_in_slack_and_the_log(
    stack: Stack, company: Company, debug_logs: io.StringIO
) -> None:
    await admin_asks_for_a_pass(stack, company)
    await settle(stack)

    logged = [json.loads(line) for line in debug_logs.getvalue().splitlines() if line.startswith("{")]
    [line] = [entry for entry in logged if entry.get("event") == "security.alert"]
    assert line["level"] == "error" and f"@{company.lin.slack_id}" in line["summary"]
    assert security_alerts.FORWARD_DEADLINE not in await deadline_kinds(stack)
