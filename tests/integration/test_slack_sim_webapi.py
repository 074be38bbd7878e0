"""The Slack simulator's Web API, exercised through slack_sdk's real AsyncWebClient."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack_sim import DEFAULT_SCOPES, SlackSimulator

BOT = "U0KEYBOT"
HELPDESK = "G0HELPDESK"


@pytest.fixture
async def sim() -> AsyncIterator[SlackSimulator]:
    sim = SlackSimulator(signing_secret="test-secret")
    await sim.start()
    sim.add_user("U1", "alice", real_name="Alice Example", email="Alice@Example.com", tz="Europe/Paris")
    sim.add_user("U2", "bob", email="bob@example.com")
    sim.add_channel(HELPDESK, "helpdesk", is_private=True, members=[BOT, "U2"])
    yield sim
    await sim.stop()


@pytest.fixture
def client(sim: SlackSimulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-sim-token", base_url=sim.api_url)


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call  # type: ignore[misc]
    return str(caught.value.response["error"])


# --- auth and tokens ------------------------------------------------------------------------------


async def test_auth_test_names_the_bot(client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T0KEYDESK", BOT, "B0KEYBOT")


async def test_tokens_are_checked(sim: SlackSimulator) -> None:
    assert (
        await error_of(AsyncWebClient(token="xoxb-wrong", base_url=sim.api_url).auth_test()) == "invalid_auth"
    )
    assert await error_of(AsyncWebClient(base_url=sim.api_url).auth_test()) == "not_authed"
    app_client = AsyncWebClient(token="xapp-sim-token", base_url=sim.api_url)
    assert await error_of(app_client.chat_postMessage(channel="U1", text="x")) == "not_allowed_token_type"
    bot_client = AsyncWebClient(token="xoxb-sim-token", base_url=sim.api_url)
    assert (
        await error_of(bot_client.apps_connections_open(app_token="xoxb-sim-token"))
        == "not_allowed_token_type"
    )


async def test_unknown_method(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.api_call("chat.postMassage", json={"channel": "U1"})
    assert caught.value.response.data == {
        "ok": False,
        "error": "unknown_method",
        "req_method": "chat.postMassage",
    }


# --- users ----------------------------------------------------------------------------------------


async def test_users_info_has_profile_email_and_timezone(sim: SlackSimulator, client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U1"))["user"]
    assert user["profile"]["email"] == "Alice@Example.com"
    assert user["real_name"] == "Alice Example" and user["tz"] == "Europe/Paris"
    assert user["tz_offset"] == 3600  # the simulated clock says November: CET
    assert await error_of(client.users_info(user="U404")) == "user_not_found"


async def test_lookup_by_email_follows_changes_and_skips_deactivated_and_external(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    assert (await client.users_lookupByEmail(email="alice@example.com"))["user"]["id"] == "U1"
    sim.user("U1").email = "alice.new@example.com"
    assert await error_of(client.users_lookupByEmail(email="alice@example.com")) == "users_not_found"
    sim.user("U2").deleted = True
    assert await error_of(client.users_lookupByEmail(email="bob@example.com")) == "users_not_found"
    sim.add_user("UEXT", "eve", email="eve@partner.example", team_id="T0PARTNER")
    assert await error_of(client.users_lookupByEmail(email="eve@partner.example")) == "users_not_found"
    external = (await client.users_info(user="UEXT"))["user"]
    assert external["team_id"] == "T0PARTNER" and external["is_stranger"] is True


# --- DMs and messages -----------------------------------------------------------------------------


async def test_conversations_open_gives_one_dm_per_user(sim: SlackSimulator, client: AsyncWebClient) -> None:
    first = await client.conversations_open(users="U1")
    again = await client.conversations_open(users="U1")
    assert first["channel"]["id"].startswith("D")
    assert again["channel"]["id"] == first["channel"]["id"] == sim.dm_with("U1")
    assert again["already_open"] is True and "already_open" not in first.data
    sim.user("U2").deleted = True
    assert await error_of(client.conversations_open(users="U2")) == "user_disabled"
    assert sim.calls_to("conversations.open")[0].params == {"users": "U1"}  # sent as a query string


async def test_post_message_ts_are_unique_and_increasing(sim: SlackSimulator, client: AsyncWebClient) -> None:
    dm = (await client.conversations_open(users="U1"))["channel"]["id"]
    posted = [await client.chat_postMessage(channel=dm, text=f"m{i}") for i in range(5)]
    stamps = [p["ts"] for p in posted]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 5
    assert [m.text for m in sim.dm_messages("U1")] == ["m0", "m1", "m2", "m3", "m4"]
    assert posted[0]["message"]["bot_id"] == "B0KEYBOT"


async def test_posting_to_a_user_id_lands_in_their_dm(sim: SlackSimulator, client: AsyncWebClient) -> None:
    answer = await client.chat_postMessage(channel="U1", text="hello")
    assert answer["channel"] == sim.dm_with("U1")
    assert sim.dm_messages("U1")[0].text == "hello"


async def test_thread_replies_are_kept_with_their_thread(sim: SlackSimulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=HELPDESK, text="request #1")
    await client.chat_postMessage(
        channel=HELPDESK, text="approved", thread_ts=parent["ts"], reply_broadcast=True
    )
    messages = sim.messages(HELPDESK)
    assert [(m.text, m.thread_ts) for m in messages] == [("request #1", None), ("approved", parent["ts"])]
    assert messages[1].reply_broadcast and messages[1].is_reply
    link = (await client.chat_getPermalink(channel=HELPDESK, message_ts=messages[1].ts))["permalink"]
    assert link.endswith(f"?thread_ts={parent['ts']}&cid={HELPDESK}")


async def test_block_validation_matches_slack(sim: SlackSimulator, client: AsyncWebClient) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="U1", text="t", blocks=[section] * 51)
    assert caught.value.response["error"] == "invalid_blocks"
    assert caught.value.response["errors"] == ["must be less than 51 items [json-pointer:/blocks]"]
    empty = {"type": "section", "text": {"type": "mrkdwn", "text": ""}}
    bad_button = {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "mrkdwn", "text": "Go"}}],
    }
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="U1", text="t", blocks=[empty, bad_button])
    assert caught.value.response["errors"] == [
        "must be more than 0 characters [json-pointer:/blocks/0/text/text]",
        "must be plain_text [json-pointer:/blocks/1/elements/0/text/type]",
    ]
    with pytest.warns(UserWarning):
        assert await error_of(client.chat_postMessage(channel="U1")) == "no_text"
    assert sim.dm_messages("U1") == []


async def test_blocks_without_text_work_but_are_flagged(sim: SlackSimulator, client: AsyncWebClient) -> None:
    with pytest.warns(UserWarning):  # slack_sdk warns too
        await client.chat_postMessage(channel="U1", blocks=[{"type": "divider"}])
    assert any("no `text`" in w for w in sim.warnings)


async def test_form_encoded_calls_with_json_strings(sim: SlackSimulator, client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "form"}}]
    await client.api_call(
        "chat.postMessage", data={"channel": "U1", "text": "form", "blocks": json.dumps(blocks)}
    )
    message = sim.dm_messages("U1")[0]
    assert message.blocks[0]["text"]["text"] == "form" and message.blocks[0]["block_id"]


# --- private channels and scopes ------------------------------------------------------------------


async def test_private_channel_needs_the_bot_as_a_member(sim: SlackSimulator, client: AsyncWebClient) -> None:
    sim.add_channel("G0SECRET", "secret", is_private=True, members=["U1"])
    sim.add_channel("C0PUBLIC", "general", is_private=False, members=["U1"])
    assert await error_of(client.chat_postMessage(channel="G0SECRET", text="x")) == "channel_not_found"
    assert await error_of(client.chat_postMessage(channel="C0PUBLIC", text="x")) == "not_in_channel"
    sim.channel("G0SECRET").members.add(BOT)
    assert (await client.chat_postMessage(channel="G0SECRET", text="x"))["channel"] == "G0SECRET"


async def test_reading_channel_info_needs_scopes_keydesk_does_not_request(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.conversations_info(channel=HELPDESK)
    assert (
        caught.value.response["error"] == "missing_scope" and caught.value.response["needed"] == "groups:read"
    )
    assert await error_of(client.usergroups_users_list(usergroup="S1")) == "missing_scope"


async def test_granted_scopes_unlock_methods() -> None:
    sim = SlackSimulator(signing_secret="s", scopes=DEFAULT_SCOPES | {"groups:read", "usergroups:read"})
    await sim.start()
    try:
        sim.add_channel(HELPDESK, "helpdesk", members=[BOT])
        sim.add_usergroup("S0HELP", ["U2", "U3"])
        client = AsyncWebClient(token="xoxb-sim-token", base_url=sim.api_url)
        info = (await client.conversations_info(channel=HELPDESK))["channel"]
        assert info["is_private"] and info["is_member"]
        assert (await client.usergroups_users_list(usergroup="S0HELP"))["users"] == ["U2", "U3"]
        assert await error_of(client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"
    finally:
        await sim.stop()


# --- update, delete, ephemeral --------------------------------------------------------------------


async def test_update_and_delete_change_what_the_user_sees(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="U1", text="Your pass is ready")
    dm = posted["channel"]
    updated = await client.chat_update(channel=dm, ts=posted["ts"], text="Expired", blocks=[])
    assert updated["text"] == "Expired"
    [message] = sim.dm_messages("U1")
    assert (message.text, message.blocks, message.ts) == ("Expired", [], posted["ts"]) and message.edited_ts
    await client.chat_delete(channel=dm, ts=posted["ts"])
    assert sim.dm_messages("U1") == []
    assert await error_of(client.chat_delete(channel=dm, ts=posted["ts"])) == "message_not_found"
    assert await error_of(client.chat_update(channel=dm, ts=posted["ts"], text="x")) == "message_not_found"
    assert await error_of(client.chat_update(channel="U1", ts=posted["ts"], text="x")) == "channel_not_found"


async def test_only_the_bots_own_messages_can_change(sim: SlackSimulator, client: AsyncWebClient) -> None:
    user_message = sim.core.workspace.post(HELPDESK, user="U2", text="mine", team="T0KEYDESK")
    assert (
        await error_of(client.chat_update(channel=HELPDESK, ts=user_message.ts, text="x"))
        == "cant_update_message"
    )
    assert await error_of(client.chat_delete(channel=HELPDESK, ts=user_message.ts)) == "cant_delete_message"
    posted = await client.chat_postMessage(channel=HELPDESK, text="card")
    too_long = client.chat_update(channel=HELPDESK, ts=posted["ts"], text="x" * 4001)
    assert await error_of(too_long) == "msg_too_long"


async def test_ephemerals_reach_only_channel_members(sim: SlackSimulator, client: AsyncWebClient) -> None:
    assert (
        await error_of(client.chat_postEphemeral(channel=HELPDESK, user="U1", text="x"))
        == "user_not_in_channel"
    )
    answer = await client.chat_postEphemeral(channel=HELPDESK, user="U2", text="only you")
    [ephemeral] = sim.ephemerals(HELPDESK, "U2")
    assert ephemeral.ts == answer["message_ts"] and ephemeral.text == "only you"
    assert sim.messages(HELPDESK) == []


# --- faults ---------------------------------------------------------------------------------------


async def test_rate_limit_fault_recovered_by_the_retry_handler(sim: SlackSimulator) -> None:
    sim.add_fault("chat.postMessage", error="ratelimited", retry_after=0)
    client = AsyncWebClient(
        token="xoxb-sim-token",
        base_url=sim.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    answer = await client.chat_postMessage(channel="U1", text="after a 429")
    assert answer["ok"] and time.monotonic() - started < 2
    assert [(c.http_status, c.error) for c in sim.calls_to("chat.postMessage")] == [
        (429, "ratelimited"),
        (200, None),
    ]
    assert [m.text for m in sim.dm_messages("U1")] == ["after a 429"]


async def test_rate_limit_without_retry_handler_raises_with_retry_after(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    sim.add_fault("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="U1", text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"


async def test_faults_count_down_and_can_apply_before_failing(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    sim.add_fault("chat.postMessage", error="internal_error", status=500, times=2)
    for _ in range(2):
        assert await error_of(client.chat_postMessage(channel="U1", text="x")) == "internal_error"
    assert sim.dm_messages("U1") == []
    await client.chat_postMessage(channel="U1", text="third time")
    sim.add_fault("chat.postMessage", error="internal_error", apply=True)
    assert await error_of(client.chat_postMessage(channel="U1", text="lost answer")) == "internal_error"
    assert [m.text for m in sim.dm_messages("U1")] == ["third time", "lost answer"]


async def test_dropped_response_is_a_connection_error(sim: SlackSimulator) -> None:
    sim.add_fault("auth.test", drop=True)
    client = AsyncWebClient(token="xoxb-sim-token", base_url=sim.api_url, retry_handlers=[])
    with pytest.raises(Exception) as caught:
        await client.auth_test()
    assert not isinstance(caught.value, SlackApiError)
    assert (await client.auth_test())["ok"]


async def test_wait_for_sees_calls_and_reports_what_it_saw(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel="U1", text="one")
    call = await sim.wait_for("chat.postMessage", lambda c: c.params["text"] == "one")
    assert call.token == "xoxb-sim-token"
    with pytest.raises(AssertionError, match=r"no matching chat\.postMessage"):
        await sim.wait_for("chat.postMessage", since=len(sim.calls), timeout=0.05)


async def test_outbound_text_holds_everything_the_bot_sent(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(
        channel="U1", text="hi", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "CANARY-7"}}]
    )
    await client.views_publish(
        user_id="U1",
        view={"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Z9"}}]},
    )
    outbound = sim.all_outbound_text()
    assert "CANARY-7" in outbound and "Z9" in outbound and "xoxb-sim-token" not in outbound
