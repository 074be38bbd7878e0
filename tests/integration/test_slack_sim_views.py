"""The simulator's views.*: trigger ids, modal validation, stacks, updates and Home tabs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import FrozenClock
from bot.sandbox.slack_sim import SlackSimulator


def modal(title: str = "Lost key", **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "lost_key",
        "title": {"type": "plain_text", "text": title},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Which key?"}}],
    }
    view.update(extra)
    return view


def home(text: str = "Welcome") -> dict[str, Any]:
    return {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


@pytest.fixture
async def sim(clock: FrozenClock) -> AsyncIterator[SlackSimulator]:
    sim = SlackSimulator(signing_secret="test-secret", clock=clock)
    await sim.start()
    sim.add_user("U1", "alice")
    sim.add_user("U2", "bob")
    yield sim
    await sim.stop()


@pytest.fixture
def client(sim: SlackSimulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-sim-token", base_url=sim.api_url)


async def failure(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        await call
    return dict(caught.value.response.data)  # type: ignore[arg-type]


# --- trigger ids ----------------------------------------------------------------------------------


async def test_a_trigger_opens_one_modal_for_its_user(sim: SlackSimulator, client: AsyncWebClient) -> None:
    trigger = sim.issue_trigger("U1")
    view = (await client.views_open(trigger_id=trigger, view=modal()))["view"]
    assert view["id"].startswith("V") and view["hash"] and view["root_view_id"] == view["id"]
    assert view["state"] == {"values": {}} and view["blocks"][0]["block_id"]
    assert [v.id for v in sim.open_views("U1")] == [view["id"]] and sim.open_views("U2") == []
    assert (await failure(client.views_open(trigger_id=trigger, view=modal())))[
        "error"
    ] == "exchanged_trigger_id"


async def test_triggers_expire_after_three_seconds(
    sim: SlackSimulator, client: AsyncWebClient, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = sim.issue_trigger("U1")
    clock.advance(3.1)
    assert (await failure(client.views_open(trigger_id=trigger, view=modal())))[
        "error"
    ] == "expired_trigger_id"
    # The wall clock counts too: an app that is slow in real time misses the window.
    trigger = sim.issue_trigger("U1")
    import bot.sandbox.slack_sim.views as views_module

    real = views_module.time.monotonic
    monkeypatch.setattr(views_module.time, "monotonic", lambda: real() + 3.5)
    assert (await failure(client.views_open(trigger_id=trigger, view=modal())))[
        "error"
    ] == "expired_trigger_id"


async def test_made_up_triggers_are_invalid(client: AsyncWebClient) -> None:
    for trigger in ("not-a-trigger", "123.456.abcdef"):
        assert (await failure(client.views_open(trigger_id=trigger, view=modal())))[
            "error"
        ] == "invalid_trigger_id"


async def test_a_rejected_view_does_not_use_up_the_trigger(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    trigger = sim.issue_trigger("U1")
    await failure(client.views_open(trigger_id=trigger, view=modal(title="x" * 25)))
    assert (await client.views_open(trigger_id=trigger, view=modal()))["ok"]


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "message"),
    [
        (
            modal(title="A title of 25 characters!"),
            "must be less than 25 characters [json-pointer:/view/title/text]",
        ),
        (
            modal(private_metadata="x" * 3001),
            "must be less than 3001 characters [json-pointer:/view/private_metadata]",
        ),
        (modal(callback_id="c" * 256), "must be less than 256 characters [json-pointer:/view/callback_id]"),
        (
            modal(submit={"type": "mrkdwn", "text": "Go"}),
            "must be plain_text [json-pointer:/view/submit/type]",
        ),
        (home(), "must be modal [json-pointer:/view/type]"),
        (
            modal(blocks=[{"type": "divider"}] * 101),
            "must be less than 101 items [json-pointer:/view/blocks]",
        ),
        (modal(colour="red"), "invalid additional property: colour [json-pointer:/view/colour]"),
        (
            modal(
                blocks=[
                    {
                        "type": "input",
                        "block_id": "why",
                        "label": {"type": "plain_text", "text": "What happened?"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    }
                ]
            ),
            "submit is required when a view contains input blocks [json-pointer:/view/submit]",
        ),
    ],
)
async def test_invalid_modals_are_refused(
    sim: SlackSimulator, client: AsyncWebClient, view: dict[str, Any], message: str
) -> None:
    answer = await failure(client.views_open(trigger_id=sim.issue_trigger("U1"), view=view))
    assert answer["error"] == "invalid_arguments"
    assert answer["response_metadata"]["messages"] == [f"[ERROR] {message}"]
    assert sim.open_views("U1") == []


async def test_oversized_views_are_refused(sim: SlackSimulator, client: AsyncWebClient) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}
    answer = await failure(
        client.views_open(trigger_id=sim.issue_trigger("U1"), view=modal(blocks=[section] * 90))
    )
    assert answer["error"] == "view_too_large"


# --- stacks and updates ---------------------------------------------------------------------------


async def test_push_stacks_at_most_three(sim: SlackSimulator, client: AsyncWebClient) -> None:
    root = (await client.views_open(trigger_id=sim.issue_trigger("U1"), view=modal("One")))["view"]
    second = (await client.views_push(trigger_id=sim.issue_trigger("U1"), view=modal("Two")))["view"]
    await client.views_push(trigger_id=sim.issue_trigger("U1"), view=modal("Three"))
    assert second["previous_view_id"] == root["id"] and second["root_view_id"] == root["id"]
    answer = await failure(client.views_push(trigger_id=sim.issue_trigger("U1"), view=modal("Four")))
    assert answer["error"] == "push_limit_reached"
    assert [v.title["text"] for v in sim.open_views("U1") if v.title] == ["One", "Two", "Three"]


async def test_update_by_id_or_external_id_with_hash_check(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    opened = (await client.views_open(trigger_id=sim.issue_trigger("U1"), view=modal(external_id="req-1")))[
        "view"
    ]
    updated = (
        await client.views_update(
            view_id=opened["id"], hash=opened["hash"], view=modal("Step 2", external_id="req-1")
        )
    )["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    stale = await failure(client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Late")))
    assert stale["error"] == "hash_conflict"
    await client.views_update(external_id="req-1", view=modal("Step 3", external_id="req-1"))
    [current] = sim.open_views("U1")
    assert current.title == {"type": "plain_text", "text": "Step 3"}
    assert (await failure(client.views_update(view_id="VNOPE", view=modal())))["error"] == "not_found"


async def test_external_ids_are_unique(sim: SlackSimulator, client: AsyncWebClient) -> None:
    await client.views_open(trigger_id=sim.issue_trigger("U1"), view=modal(external_id="same"))
    answer = await failure(
        client.views_open(trigger_id=sim.issue_trigger("U2"), view=modal(external_id="same"))
    )
    assert answer["error"] == "duplicate_external_id"


async def test_home_is_published_per_user(sim: SlackSimulator, client: AsyncWebClient) -> None:
    first = (await client.views_publish(user_id="U1", view=home("Hello Alice")))["view"]
    await client.views_publish(user_id="U2", view=home("Hello Bob"))
    again = (await client.views_publish(user_id="U1", view=home("Alice, again")))["view"]
    assert again["id"] == first["id"] and again["type"] == "home"
    alice, bob = sim.home_view("U1"), sim.home_view("U2")
    assert alice is not None and bob is not None
    assert alice.blocks[0]["text"]["text"] == "Alice, again" and bob.blocks[0]["text"]["text"] == "Hello Bob"
    conflict = await failure(client.views_publish(user_id="U1", hash=first["hash"], view=home("x")))
    assert conflict["error"] == "hash_conflict"
    assert (await failure(client.views_publish(user_id="U404", view=home())))["error"] == "invalid_arguments"
    assert (await failure(client.views_publish(user_id="U1", view=modal())))["error"] == "invalid_arguments"
    markdown = {"type": "home", "blocks": [{"type": "markdown", "text": "**hi**"}]}
    assert (await failure(client.views_publish(user_id="U1", view=markdown)))["error"] == "invalid_arguments"
