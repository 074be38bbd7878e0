"""The simulator's Socket Mode, with slack_bolt's real AsyncSocketModeHandler on the other end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack_sim import DeliveryKind, SlackSimulator, Transport

MODAL = {
    "type": "modal",
    "callback_id": "lost_key",
    "title": {"type": "plain_text", "text": "Lost key"},
    "submit": {"type": "plain_text", "text": "Report"},
    "blocks": [
        {
            "type": "input",
            "block_id": "why",
            "label": {"type": "plain_text", "text": "What happened?"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


@dataclass
class Seen:
    headers: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def build_app(client: AsyncWebClient, seen: Seen) -> AsyncApp:
    app = AsyncApp(client=client)

    @app.event("message")
    async def on_dm(event: dict[str, Any], request: Any, say: Any) -> None:
        seen.events.append(event)
        seen.headers.append(dict(request.headers))
        await say(text=f"echo: {event['text']}")

    @app.command("/keydesk")
    async def keydesk(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        if body["text"] == "help":
            await ack(text="keydesk help")
            return
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("lost_key")
    async def submitted(ack: Any, view: dict[str, Any]) -> None:
        await ack(
            response_action="errors",
            errors={"why": f"not enough: {view['state']['values']['why']['text']['value']}"},
        )

    return app


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


@dataclass
class Rig:
    sim: SlackSimulator
    seen: Seen
    handler: AsyncSocketModeHandler


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sim = SlackSimulator(signing_secret="unused-in-socket-mode")
    await sim.start()
    sim.add_user("U1", "alice")
    seen = Seen()
    app = build_app(AsyncWebClient(token="xoxb-sim-token", base_url=sim.api_url), seen)
    handler = AsyncSocketModeHandler(app, app_token="xapp-sim-token")
    await handler.connect_async()
    await eventually(lambda: sim.socket_connected)
    yield Rig(sim, seen, handler)
    await handler.close_async()
    await sim.stop()


async def test_connection_uses_the_app_token(rig: Rig) -> None:
    [opened] = rig.sim.calls_to("apps.connections.open")
    assert opened.token == "xapp-sim-token" and opened.ok
    assert opened.response["url"].startswith("ws://127.0.0.1:")


async def test_events_travel_over_the_socket_and_are_acked(rig: Rig) -> None:
    delivery = await rig.sim.send_dm("U1", "hello")
    assert delivery.ok and delivery.transport == Transport.SOCKET and delivery.payload is None
    await rig.sim.wait_for("chat.postMessage", lambda c: c.params["text"] == "echo: hello")
    assert rig.seen.events[0]["channel_type"] == "im"


async def test_slash_command_ack_payload_comes_back(rig: Rig) -> None:
    delivery = await rig.sim.slash("U1", "/keydesk", "help")
    assert delivery.ok and delivery.kind == DeliveryKind.SLASH_COMMANDS
    assert delivery.payload == {"text": "keydesk help"}
    assert [e.text for e in rig.sim.ephemerals(user_id="U1")] == ["keydesk help"]


async def test_view_submission_response_action_over_the_socket(rig: Rig) -> None:
    await rig.sim.slash("U1", "/keydesk")
    await rig.sim.wait_for("views.open")
    [view] = rig.sim.open_views("U1")
    delivery = await rig.sim.submit_view("U1", view.id, {"why": {"text": "lost it"}})
    assert delivery.payload == {"response_action": "errors", "errors": {"why": "not enough: lost it"}}
    assert rig.sim.open_views("U1")[0].errors == {"why": "not enough: lost it"}


async def test_retries_carry_retry_attempt_into_bolt_headers(rig: Rig) -> None:
    first = await rig.sim.send_dm("U1", "again")
    await rig.sim.redeliver(first, retry_num=2, reason="timeout")
    await eventually(lambda: len(rig.seen.headers) == 2)
    envelopes = rig.sim.socket_envelopes
    assert (envelopes[0]["retry_attempt"], envelopes[1]["retry_attempt"]) == (0, 2)
    assert envelopes[0]["envelope_id"] != envelopes[1]["envelope_id"]
    assert rig.seen.headers[1]["x-slack-retry-num"] == ["2"]
    assert rig.seen.headers[1]["x-slack-retry-reason"] == ["timeout"]
    assert rig.seen.events[0]["ts"] == rig.seen.events[1]["ts"]


async def test_refresh_makes_the_client_reconnect(rig: Rig) -> None:
    await rig.sim.refresh_socket()
    await eventually(lambda: len(rig.sim.calls_to("apps.connections.open")) == 2, timeout=5)
    await eventually(lambda: rig.sim.socket_connected)
    assert (await rig.sim.send_dm("U1", "still there")).ok
