"""The simulator driving a tiny Bolt AsyncApp over HTTP: signed requests, real payloads, UI state."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack_sim import DeliveryKind, SimUsageError, SlackSimulator, Transport

SECRET = "test-signing-secret"
BOT = "U0KEYBOT"
HELPDESK = "G0HELPDESK"


def reason_modal(**extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "lost_key",
        "title": {"type": "plain_text", "text": "Lost key"},
        "submit": {"type": "plain_text", "text": "Report"},
        "private_metadata": "req-42",
        "blocks": [
            {
                "type": "input",
                "block_id": "what",
                "label": {"type": "plain_text", "text": "What happened?"},
                "element": {
                    "type": "static_select",
                    "action_id": "kind",
                    "options": [
                        {"text": {"type": "plain_text", "text": "Lost"}, "value": "lost"},
                        {"text": {"type": "plain_text", "text": "Stolen"}, "value": "stolen"},
                    ],
                },
            },
            {
                "type": "input",
                "block_id": "notes",
                "optional": True,
                "label": {"type": "plain_text", "text": "Notes"},
                "element": {"type": "plain_text_input", "action_id": "text", "max_length": 20},
            },
        ],
        **extra,
    }


@dataclass
class Seen:
    """What the tiny app saw, so tests can check the payloads Bolt handed to listeners."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, Any]] = field(default_factory=list)


def build_app(client: AsyncWebClient, seen: Seen, **app_kwargs: Any) -> AsyncApp:
    app = AsyncApp(client=client, **app_kwargs)

    @app.event("message")
    async def on_dm(event: dict[str, Any], say: Any, body: dict[str, Any], request: Any) -> None:
        seen.bodies.append(body)
        seen.headers.append(dict(request.headers))
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"You said: {event['text']}"}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "reveal",
                        "text": {"type": "plain_text", "text": "Reveal"},
                        "value": "req-42",
                    }
                ],
            },
        ]
        await say(text=f"You said: {event['text']}", blocks=blocks)

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        button = {
            "type": "button",
            "action_id": "home_setup",
            "text": {"type": "plain_text", "text": "Set up"},
        }
        view = {"type": "home", "blocks": [{"type": "actions", "elements": [button]}]}
        await client.views_publish(user_id=event["user"], view=view)

    @app.command("/lostkey")
    async def lostkey(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        seen.bodies.append(body)
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=reason_modal())

    @app.command("/keydesk")
    async def keydesk(ack: Any, command: dict[str, Any]) -> None:
        seen.bodies.append(command)
        await ack(text=f"Usage: /keydesk help ({command['text']})")

    @app.command("/silent")
    async def silent(ack: Any) -> None:
        await asyncio.sleep(0.4)
        await ack()

    @app.view("lost_key")
    async def submitted(ack: Any, view: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        seen.bodies.append(body)
        choice = view["state"]["values"]["what"]["kind"]["selected_option"]["value"]
        notes = view["state"]["values"]["notes"]["text"]["value"]
        if notes == "push":
            await ack(response_action="push", view=reason_modal(callback_id="second"))
        elif choice == "stolen" and not notes:
            await ack(response_action="errors", errors={"notes": "Tell us where it was stolen"})
        else:
            await ack()
            await client.chat_postMessage(channel=body["user"]["id"], text=f"Reported {choice}")

    @app.action("reveal")
    async def reveal(ack: Any, body: dict[str, Any], respond: Any, client: AsyncWebClient) -> None:
        seen.bodies.append(body)
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=reason_modal())
        await respond(replace_original=True, text="Revealed in a modal")

    @app.command("/stack")
    async def stack(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=reason_modal(
                callback_id="stack",
                blocks=[
                    *reason_modal()["blocks"],
                    {
                        "type": "actions",
                        "block_id": "more",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": "more",
                                "text": {"type": "plain_text", "text": "More"},
                            }
                        ],
                    },
                ],
            ),
        )

    @app.action("more")
    async def more(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        seen.bodies.append(body)
        await ack()
        await client.views_push(trigger_id=body["trigger_id"], view=reason_modal(callback_id="pushed"))

    @app.action("home_setup")
    async def home_setup(ack: Any, body: dict[str, Any]) -> None:
        seen.bodies.append(body)
        await ack()

    @app.shortcut("start_onboarding")
    async def shortcut(ack: Any, shortcut: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=shortcut["trigger_id"], view=reason_modal(notify_on_close=True))

    @app.view_closed("lost_key")
    async def closed(ack: Any, body: dict[str, Any]) -> None:
        seen.bodies.append(body)
        await ack()

    return app


@dataclass
class Rig:
    sim: SlackSimulator
    seen: Seen
    url: str


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sim = SlackSimulator(signing_secret=SECRET)
    await sim.start()
    sim.add_user("U1", "alice", email="alice@example.com")
    sim.add_user("U2", "bob", email="bob@example.com")
    sim.add_channel(HELPDESK, "helpdesk", members=[BOT, "U2"])
    seen = Seen()
    client = AsyncWebClient(token="xoxb-sim-token", base_url=sim.api_url)
    app = build_app(client, seen, signing_secret=SECRET)
    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    sim.connect_bot(url)
    yield Rig(sim, seen, url)
    await runner.cleanup()
    await sim.stop()


# --- events ---------------------------------------------------------------------------------------


async def test_a_dm_reaches_the_app_as_a_signed_message_event(rig: Rig) -> None:
    delivery = await rig.sim.send_dm("U1", "set up my key")
    assert delivery.ok and delivery.transport == Transport.HTTP and delivery.kind == DeliveryKind.EVENTS_API
    await rig.sim.wait_for("chat.postMessage")
    texts = [(m.user, m.text) for m in rig.sim.dm_messages("U1")]
    assert texts == [("U1", "set up my key"), (BOT, "You said: set up my key")]
    body = rig.seen.bodies[0]
    assert body["type"] == "event_callback" and body["event_id"].startswith("Ev")
    assert body["event"]["channel_type"] == "im" and body["event"]["channel"] == rig.sim.dm_with("U1")
    assert body["authorizations"][0]["user_id"] == BOT


async def test_redelivery_keeps_the_event_id_and_adds_retry_headers(rig: Rig) -> None:
    first = await rig.sim.send_dm("U1", "hello")
    retry = await rig.sim.redeliver(first)
    assert retry.ok and retry.request.body == first.request.body
    for _ in range(100):
        if len(rig.seen.headers) == 2:
            break
        await asyncio.sleep(0.01)
    assert rig.seen.bodies[0]["event_id"] == rig.seen.bodies[1]["event_id"]
    assert "x-slack-retry-num" not in rig.seen.headers[0]
    assert rig.seen.headers[1]["x-slack-retry-num"] == ["1"]
    assert rig.seen.headers[1]["x-slack-retry-reason"] == ["http_timeout"]


async def test_thread_replies_reach_the_app_only_where_the_bot_is(rig: Rig) -> None:
    parent = rig.sim.core.workspace.post(HELPDESK, user=BOT, text="card", team="T0KEYDESK", bot_id="B0KEYBOT")
    delivery = await rig.sim.send_thread_reply("U2", HELPDESK, parent.ts, "verified by phone")
    assert delivery is not None and delivery.ok
    event = rig.seen.bodies[-1]["event"]
    assert (event["channel_type"], event["thread_ts"], event["parent_user_id"]) == ("group", parent.ts, BOT)
    rig.sim.channel(HELPDESK).members.discard(BOT)
    assert await rig.sim.send_thread_reply("U2", HELPDESK, parent.ts, "unseen") is None
    with pytest.raises(SimUsageError):
        await rig.sim.send_thread_reply("U1", HELPDESK, parent.ts, "not a member")


# --- signatures -----------------------------------------------------------------------------------


def command_body(**overrides: str) -> bytes:
    fields = {
        "command": "/keydesk",
        "text": "help",
        "user_id": "U1",
        "team_id": "T0KEYDESK",
        "trigger_id": "1.2.a",
    }
    fields.update(overrides)
    return urlencode(fields).encode()


async def test_signed_raw_request_is_accepted(rig: Rig) -> None:
    body = command_body()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **rig.sim.sign(body)}
    assert (await rig.sim.deliver_raw(body, headers)).status == 200


async def test_tampered_body_is_refused(rig: Rig) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **rig.sim.sign(command_body())}
    delivery = await rig.sim.deliver_raw(command_body(user_id="U2"), headers)
    assert delivery.status == 401


@pytest.mark.parametrize("skew", [-301, 301])
async def test_stale_or_future_timestamp_is_refused(rig: Rig, skew: int) -> None:
    body = command_body()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **rig.sim.sign(body, int(time.time()) + skew),
    }
    assert (await rig.sim.deliver_raw(body, headers)).status == 401


async def test_wrong_secret_is_refused(rig: Rig) -> None:
    other = SlackSimulator(signing_secret="not-the-secret")
    other.connect_bot(rig.url)
    other.add_user("U1", "alice")
    delivery = await other.slash("U1", "/keydesk")
    await other.stop()
    assert delivery.status == 401


# --- commands, modals, actions --------------------------------------------------------------------


async def test_command_ack_text_becomes_an_ephemeral(rig: Rig) -> None:
    delivery = await rig.sim.slash("U1", "/keydesk", "tap @bob")
    assert delivery.ok and delivery.payload == {"text": "Usage: /keydesk help (tap @bob)"}
    [ephemeral] = rig.sim.ephemerals(rig.sim.dm_with("U1"), "U1")
    assert ephemeral.text == "Usage: /keydesk help (tap @bob)"


async def test_slow_ack_times_out_like_slack(rig: Rig) -> None:
    rig.sim.ack_timeout = 0.1
    delivery = await rig.sim.slash("U1", "/silent")
    assert delivery.timed_out and not delivery.ok and delivery.status == 0


async def test_command_opens_a_modal_and_errors_keep_it_open(rig: Rig) -> None:
    assert (await rig.sim.slash("U1", "/lostkey")).ok
    await rig.sim.wait_for("views.open")
    [view] = rig.sim.open_views("U1")
    assert view.callback_id == "lost_key" and view.private_metadata == "req-42"
    answer = await rig.sim.submit_view("U1", view.id, {"what": {"kind": "stolen"}})
    assert answer.payload == {"response_action": "errors", "errors": {"notes": "Tell us where it was stolen"}}
    [still_open] = rig.sim.open_views("U1")
    assert still_open.errors == {"notes": "Tell us where it was stolen"}
    state = rig.seen.bodies[-1]["view"]["state"]["values"]
    assert (
        state["what"]["kind"]["selected_option"]["value"] == "stolen"
        and state["notes"]["text"]["value"] is None
    )
    closed = await rig.sim.submit_view(
        "U1", view.id, {"what": {"kind": "stolen"}, "notes": {"text": "on the bus"}}
    )
    assert closed.ok and closed.payload is None and rig.sim.open_views("U1") == []
    await rig.sim.wait_for("chat.postMessage", lambda c: c.params["text"] == "Reported stolen")
    assert rig.sim.protocol_errors == []


async def test_response_action_push_grows_the_stack(rig: Rig) -> None:
    await rig.sim.slash("U1", "/lostkey")
    await rig.sim.wait_for("views.open")
    [view] = rig.sim.open_views("U1")
    await rig.sim.submit_view("U1", view.id, {"what": {"kind": "lost"}, "notes": {"text": "push"}})
    assert [v.callback_id for v in rig.sim.open_views("U1")] == ["lost_key", "second"]


async def test_the_client_refuses_what_slack_would_not_submit(rig: Rig) -> None:
    await rig.sim.slash("U1", "/lostkey")
    await rig.sim.wait_for("views.open")
    [view] = rig.sim.open_views("U1")
    with pytest.raises(SimUsageError, match="required"):
        await rig.sim.submit_view("U1", view.id, {})
    with pytest.raises(SimUsageError, match="max_length"):
        await rig.sim.submit_view("U1", view.id, {"what": {"kind": "lost"}, "notes": {"text": "x" * 21}})
    with pytest.raises(SimUsageError, match="no inputs"):
        await rig.sim.submit_view("U1", view.id, {"wat": {"kind": "lost"}})
    with pytest.raises(SimUsageError, match="no option"):
        await rig.sim.submit_view("U1", view.id, {"what": {"kind": "misplaced"}})
    with pytest.raises(SimUsageError, match="belongs to"):
        await rig.sim.submit_view("U2", view.id, {"what": {"kind": "lost"}})


async def test_button_click_carries_the_message_and_response_url_replaces_it(rig: Rig) -> None:
    await rig.sim.send_dm("U1", "hi")
    await rig.sim.wait_for("chat.postMessage")
    card = rig.sim.dm_messages("U1")[-1]
    delivery = await rig.sim.click("U1", "reveal", message=card)
    assert delivery.ok
    await rig.sim.wait_for("views.open")
    body = rig.seen.bodies[-1]
    assert body["actions"][0]["value"] == "req-42" and body["actions"][0]["type"] == "button"
    assert body["container"] == {
        "type": "message",
        "message_ts": card.ts,
        "channel_id": card.channel,
        "is_ephemeral": False,
    }
    assert body["message"]["blocks"] == card.blocks
    for _ in range(100):
        if rig.sim.dm_messages("U1")[-1].text == "Revealed in a modal":
            break
        await asyncio.sleep(0.01)
    replaced = rig.sim.dm_messages("U1")[-1]
    assert (replaced.ts, replaced.text, replaced.blocks) == (card.ts, "Revealed in a modal", [])


async def test_a_stale_client_can_press_a_button_the_bot_already_removed(rig: Rig) -> None:
    await rig.sim.send_dm("U1", "hi")
    await rig.sim.wait_for("chat.postMessage")
    snapshot = rig.sim.dm_messages("U1")[-1]
    await rig.sim.click("U1", "reveal", message=snapshot)
    for _ in range(100):
        if not rig.sim.dm_messages("U1")[-1].blocks:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(SimUsageError, match="no element 'reveal'"):
        await rig.sim.click("U1", "reveal", message=snapshot)
    assert (await rig.sim.click("U1", "reveal", message=snapshot, stale=True)).ok
    assert rig.seen.bodies[-1]["message"]["blocks"] == snapshot.blocks


async def test_clicks_are_limited_to_what_a_person_can_see(rig: Rig) -> None:
    await rig.sim.send_dm("U1", "hi")
    await rig.sim.wait_for("chat.postMessage")
    card = rig.sim.dm_messages("U1")[-1]
    with pytest.raises(SimUsageError, match="cannot see"):
        await rig.sim.click("U2", "reveal", message=card)
    with pytest.raises(SimUsageError, match="carries value"):
        await rig.sim.click("U1", "reveal", message=card, value="req-43")
    forged = await rig.sim.click("U2", "reveal", message=card, value="req-43", forge=True)
    assert forged.ok and rig.seen.bodies[-1]["actions"][0]["value"] == "req-43"


async def test_clicking_in_a_modal_can_push_and_only_the_top_modal_is_usable(rig: Rig) -> None:
    await rig.sim.slash("U1", "/stack")
    await rig.sim.wait_for("views.open")
    [root] = rig.sim.open_views("U1")
    with pytest.raises(SimUsageError, match="dispatch_action"):
        await rig.sim.click("U1", "kind", view_id=root.id, selected_option="lost")
    assert (await rig.sim.click("U1", "more", view_id=root.id)).ok
    body = rig.seen.bodies[-1]
    assert (
        body["container"] == {"type": "view", "view_id": root.id} and body["view"]["callback_id"] == "stack"
    )
    await rig.sim.wait_for("views.push")
    assert [v.callback_id for v in rig.sim.open_views("U1")] == ["stack", "pushed"]
    with pytest.raises(SimUsageError, match="not the modal on top"):
        await rig.sim.click("U1", "more", view_id=root.id)


async def test_home_tab_published_and_clicked(rig: Rig) -> None:
    await rig.sim.open_home("U1")
    await rig.sim.wait_for("views.publish")
    home = rig.sim.home_view("U1")
    assert home is not None
    assert (await rig.sim.click("U1", "home_setup")).ok  # found on the Home tab
    body = rig.seen.bodies[-1]
    assert body["container"] == {"type": "view", "view_id": home.id} and body["view"]["type"] == "home"


async def test_shortcut_modal_and_view_closed(rig: Rig) -> None:
    assert (await rig.sim.shortcut("U1", "start_onboarding")).ok
    await rig.sim.wait_for("views.open")
    [view] = rig.sim.open_views("U1")
    delivery = await rig.sim.close_view("U1", view.id)
    assert delivery is not None and delivery.ok
    assert rig.seen.bodies[-1]["type"] == "view_closed" and rig.sim.open_views("U1") == []


async def test_tampered_payloads_are_signed_and_delivered(rig: Rig) -> None:
    rig.sim.add_user("UEXT", "mallory", team_id="T0EVIL")
    delivery = await rig.sim.slash("UEXT", "/keydesk", "desk list")
    fields = {**delivery.request.payload, "team_id": "T0EVIL"}
    tampered = await rig.sim.deliver(DeliveryKind.SLASH_COMMANDS, fields)
    assert tampered.status == 200  # the signature is valid: only the app's own checks can refuse it
    assert [b["team_id"] for b in rig.seen.bodies] == ["T0KEYDESK", "T0EVIL"]
    assert rig.seen.bodies[0]["user_id"] == "UEXT"


async def test_enterprise_grid_ids_travel_in_payloads() -> None:
    sim = SlackSimulator(signing_secret=SECRET, enterprise_id="E0GRID")
    sim.add_user("U1", "alice")
    captured: list[dict[str, Any]] = []

    async def endpoint(request: web.Request) -> web.Response:
        captured.append(json.loads(await request.text()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sim.connect_bot(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
    try:
        assert (await sim.send_dm("U1", "hi")).ok
    finally:
        await runner.cleanup()
        await sim.stop()
    [body] = captured
    assert body["enterprise_id"] == "E0GRID" and body["authorizations"][0]["enterprise_id"] == "E0GRID"
