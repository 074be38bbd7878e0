"""The foundation, end to end: signed requests over HTTP, hygiene, health, restarts, Socket Mode."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import aiohttp
import pytest

from bot.domain.tap_request import RequestState
from bot.sandbox.company import Company
from bot.sandbox.slack_sim import DeliveryKind
from bot.sandbox.stack import Stack, open_stack
from bot.services import tap_common
from bot.slack.ids import Action

from .helpers import ShiftableClock, action_ids, ask_for_pass, eventually, settle, wait_card, wait_dm


def _event(stack: Stack, user: str, text: str, *, team: str | None = None, app: str | None = None) -> bytes:
    config = stack.slack.config
    body = {
        "token": config.verification_token,
        "team_id": team or config.team_id,
        "api_app_id": app or config.app_id,
        "type": "event_callback",
        "event_id": f"Ev{time.time_ns()}",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel_type": "im",
            "user": user,
            "text": text,
            "ts": f"{time.time():.6f}",
            "channel": "D0FAKE",
        },
    }
    return json.dumps(body).encode()


async def test_a_dm_gets_a_friendly_answer_with_buttons(stack: Stack, company: Company) -> None:
    delivery = await stack.slack.send_dm(company.ada.slack_id, "hello")
    assert delivery.status == 200
    welcome = await wait_dm(stack.slack, company.ada.slack_id, "I'm keydesk")
    assert {Action.START_SETUP, Action.REPORT_LOST, Action.ASK_HELP} <= action_ids(welcome.blocks)
    assert "Ada Lovelace" in welcome.text


async def test_app_home_lists_the_methods_entra_has(stack: Stack, company: Company) -> None:
    await stack.slack.open_home(company.morgan.slack_id)
    home = await eventually(lambda: stack.slack.home_view(company.morgan.slack_id), "Morgan's home tab")
    text = json.dumps(home.blocks)
    assert "YubiKey 5 NFC" in text and "Microsoft Authenticator" in text
    assert "phishing-resistant" in text

    await stack.slack.open_home(company.ada.slack_id)
    ada_home = await eventually(lambda: stack.slack.home_view(company.ada.slack_id), "Ada's home tab")
    assert "don't have a security key" in json.dumps(ada_home.blocks)


@pytest.mark.parametrize(
    "tamper",
    ["no_headers", "wrong_secret", "body_changed", "stale_timestamp", "future_timestamp"],
)
async def test_unsigned_or_tampered_requests_are_refused(stack: Stack, company: Company, tamper: str) -> None:
    body = _event(stack, company.ada.slack_id, "hello")
    headers = stack.slack.sign(body)
    headers["Content-Type"] = "application/json"
    if tamper == "no_headers":
        headers = {"Content-Type": "application/json"}
    elif tamper == "wrong_secret":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif tamper == "body_changed":
        body = body.replace(b"hello", b"hellO")
    elif tamper == "stale_timestamp":
        headers = {**stack.slack.sign(body, int(time.time()) - 301), "Content-Type": "application/json"}
    elif tamper == "future_timestamp":
        headers = {**stack.slack.sign(body, int(time.time()) + 301), "Content-Type": "application/json"}
    delivery = await stack.slack.deliver_raw(body, headers)
    assert delivery.status == 401
    await settle(stack)
    assert not stack.slack.calls_to("chat.postMessage")


async def test_a_signature_inside_the_window_is_accepted(stack: Stack, company: Company) -> None:
    body = _event(stack, company.ada.slack_id, "hello")
    headers = {**stack.slack.sign(body, int(time.time()) - 290), "Content-Type": "application/json"}
    assert (await stack.slack.deliver_raw(body, headers)).status == 200


async def test_a_retried_event_is_processed_once(stack: Stack, company: Company) -> None:
    first = await stack.slack.send_dm(company.ada.slack_id, "hi")
    await wait_dm(stack.slack, company.ada.slack_id, "I'm keydesk")
    retry = await stack.slack.redeliver(first)
    again = await stack.slack.redeliver(first, retry_num=2)
    assert retry.status == again.status == 200
    await settle(stack)
    assert len(stack.slack.calls_to("chat.postMessage")) == 1


@pytest.mark.keydesk_settings(slack_app_id="A0KEYDESK")
@pytest.mark.parametrize("field", ["team", "app"])
async def test_requests_for_another_team_or_app_are_refused_and_audited(
    stack: Stack, company: Company, field: str
) -> None:
    body = _event(stack, company.ada.slack_id, "hello", **{field: "T0EVIL" if field == "team" else "A0EVIL"})
    delivery = await stack.slack.deliver_raw(
        body, {**stack.slack.sign(body), "Content-Type": "application/json"}
    )
    assert delivery.status == 403
    refused = await stack.keydesk.rt.audit.entries(action_prefix="slack.request.refused")
    assert refused and refused[-1].outcome == "refused" and "foreign" in json.dumps(refused[-1].details)
    await settle(stack)
    assert not stack.slack.calls_to("chat.postMessage")


async def test_an_oversized_body_is_refused_without_crashing(stack: Stack, company: Company) -> None:
    body = _event(stack, company.ada.slack_id, "x" * (1024 * 1024))
    delivery = await stack.slack.deliver_raw(
        body, {**stack.slack.sign(body), "Content-Type": "application/json"}
    )
    assert delivery.status == 413
    # still healthy afterwards
    assert (await stack.slack.send_dm(company.ada.slack_id, "hi")).status == 200


async def test_health_and_readiness(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.url}/healthz") as health:
            assert health.status == 200
        async with http.get(f"{stack.url}/readyz") as ready:
            assert ready.status == 200
            assert (await ready.json())["checks"] == {"slack": True, "database": True}
        await stack.keydesk.rt.db.engine.dispose()
        stack.keydesk.rt.db.engine.url  # noqa: B018 - the engine reconnects lazily; readiness pings again
        async with http.get(f"{stack.url}/readyz") as again:
            assert again.status == 200


async def test_a_deadline_missed_while_down_runs_after_restart(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    await ask_for_pass(stack, company.ada.slack_id)
    card = await wait_card(stack.slack, "Waiting for approval")
    await stack.stop_app()
    app_clock.advance(timedelta(hours=5))  # past the 4-hour decision window while keydesk was down
    await stack.start_app(clock=app_clock)

    async def expired() -> bool:
        async with stack.keydesk.rt.db.session() as session:
            from bot.store import tap_repo

            request = await tap_repo.open_for_target(session, company.ada.slack_id)
        return request is None

    for _ in range(100):
        if await expired():
            break
        await settle(stack, quiet=0.1)
    latest = await tap_common.load(stack.keydesk.rt, _request_id(card))
    assert latest is not None and latest.state == RequestState.EXPIRED
    updated = await wait_card(stack.slack, "Expired")
    assert Action.TAP_APPROVE not in action_ids(updated.blocks)


def _request_id(card: object) -> str:
    for block in getattr(card, "blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == Action.TAP_APPROVE:
                return str(element["value"])
    raise AssertionError("no Approve button on the card")


async def test_socket_mode_serves_the_same_app(database_url: str) -> None:
    stack = await open_stack(database_url, slack_app_token="xapp-sim-token")
    try:
        from bot.sandbox.company import seed_company

        company = seed_company(stack.slack, stack.graph)
        await stack.start_app()
        assert stack.settings.socket_mode
        await eventually(lambda: stack.slack.socket_connected, "the socket connection")
        delivery = await stack.slack.send_dm(company.ada.slack_id, "hello")
        assert delivery.kind is DeliveryKind.EVENTS_API and delivery.status == 200
        await wait_dm(stack.slack, company.ada.slack_id, "I'm keydesk")
        opened = stack.slack.calls_to("apps.connections.open")
        assert opened and opened[0].token == stack.slack.config.app_token
    finally:
        await stack.close()
