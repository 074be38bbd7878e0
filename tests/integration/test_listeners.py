"""Every entry point Slack can send us has a Bolt listener: manifest commands, shortcuts and events, and
every button and modal id the code puts in front of people. A button without a listener shows people a
warning triangle; a command without one answers with an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from manifest_ids import MANIFESTS, bolt_event_type, manifest_entry_points
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app
from bot.config import Settings
from bot.slack.ids import Action, Callback, Command, ViewId

TEAM = "T0KEYDESK"


@pytest.fixture
async def bolt(database_url: str) -> AsyncIterator[AsyncApp]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-test",
        slack_signing_secret="s" * 32,
        graph_url="http://127.0.0.1:9",
        graph_token="test",
        database_url=database_url,
        helpdesk_channel="C0HELPDESK",
        approver_group_id="00000000-0000-0000-0000-000000000001",
    )
    keydesk = build_app(settings, client=AsyncWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"))
    try:
        yield keydesk.bolt
    finally:
        await keydesk.rt.db.close()
        await keydesk.rt.directory.close()


async def handled(bolt: AsyncApp, body: dict[str, Any]) -> bool:
    """True when a listener's matchers accept `body` (the listener itself is not run)."""
    request = AsyncBoltRequest(body=body, mode="socket_mode")
    for listener in bolt._async_listeners:  # test-only: Bolt's registry of listeners
        if await listener.async_matches(req=request, resp=BoltResponse(status=200)):
            return True
    return False


def command(name: str) -> dict[str, Any]:
    return {"command": name, "text": "", "team_id": TEAM, "user_id": "U0ADA", "channel_id": "D0ADA"}


def shortcut(callback_id: str) -> dict[str, Any]:
    return {"type": "shortcut", "callback_id": callback_id, "team": {"id": TEAM}, "user": {"id": "U0ADA"}}


def click(action_id: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": "U0ADA"},
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": "v"}],
    }


def submission(callback_id: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": "U0ADA"},
        "view": {"id": "V1", "type": "modal", "callback_id": callback_id, "state": {"values": {}}},
    }


def event(subscription: str) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": bolt_event_type(subscription), "user": "U0ADA"}
    if subscription == "message.im":
        inner |= {"channel_type": "im", "channel": "D0ADA", "text": "hi", "ts": "1.0"}
    elif subscription == "message.groups":
        inner |= {
            "channel_type": "group",
            "channel": "C0HELPDESK",
            "text": "hi",
            "ts": "2.0",
            "thread_ts": "1.0",
        }
    return {"type": "event_callback", "team_id": TEAM, "event": inner}


BUILDERS = {"command": command, "shortcut": shortcut, "event": event}


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
async def test_every_manifest_entry_point_has_a_listener(bolt: AsyncApp, manifest: Any) -> None:
    missing = [
        f"{kind} {name}"
        for kind, name in sorted(manifest_entry_points(manifest))
        if not await handled(bolt, BUILDERS[kind](name))
    ]
    assert missing == []


async def test_every_command_and_shortcut_the_code_names_has_a_listener(bolt: AsyncApp) -> None:
    missing = [c.value for c in Command if not await handled(bolt, command(c.value))]
    missing += [s.value for s in Callback if not await handled(bolt, shortcut(s.value))]
    assert missing == []


async def test_every_button_has_a_listener(bolt: AsyncApp) -> None:
    assert [a.value for a in Action if not await handled(bolt, click(a.value))] == []


async def test_every_modal_has_a_listener(bolt: AsyncApp) -> None:
    assert [v.value for v in ViewId if not await handled(bolt, submission(v.value))] == []


async def test_the_check_can_fail(bolt: AsyncApp) -> None:
    assert not await handled(bolt, click("no_such_button"))
    assert not await handled(bolt, submission("no_such_modal"))
    assert not await handled(bolt, command("/no-such-command"))
