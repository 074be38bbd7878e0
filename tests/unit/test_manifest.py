"""Both Slack app manifests: valid against Slack's published schema, least privilege, in step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from manifest_ids import MANIFESTS, bolt_event_type, load_manifest, manifest_entry_points

from bot.sandbox.slack_sim import DEFAULT_BOT_EVENTS, DEFAULT_SCOPES
from bot.slack.ids import Callback, Command

SCHEMA = Path(__file__).resolve().parent.parent / "data" / "manifest.schema.1.0.0.json"
DEV, HTTP = MANIFESTS
REQUEST_URL = "https://keydesk.example.com/slack/events"

REQUIRED_SCOPES = {
    "chat:write",  # DMs, helpdesk cards, updates and deletes of the bot's own messages
    "im:write",  # conversations.open with a user
    "im:history",  # message.im
    "groups:history",  # message.groups: thread replies in the private helpdesk channel
    "users:read",  # users.info
    "users:read.email",  # users.lookupByEmail and the profile email
    "commands",  # /keydesk, /lostkey
}
# Scopes that may be added without revisiting this test; anything else is a privilege increase.
ALLOWED_EXTRA_SCOPES = {"usergroups:read"}
# The scope each subscribed event needs (Slack's event reference).
EVENT_SCOPES = {"message.im": "im:history", "message.groups": "groups:history", "app_home_opened": None}


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return [f"{list(e.path)}: {e.message}" for e in Draft7Validator(schema).iter_errors(manifest)]


def scopes(manifest: dict[str, Any]) -> set[str]:
    return set(manifest["oauth_config"]["scopes"]["bot"])


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_slacks_schema(path: Path) -> None:
    assert schema_errors(load_manifest(path)) == []


def test_the_schema_check_catches_mistakes() -> None:
    broken = load_manifest(DEV)
    broken["settings"]["socket_mode"] = True
    broken["features"]["slash_commands"][0]["command"] = "keydesk"
    broken["features"]["shortcuts"][1]["name"] = "Issue a pass for someone else"
    errors = schema_errors(broken)
    assert len(errors) == 3, errors


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_least_privilege(path: Path) -> None:
    granted = scopes(load_manifest(path))
    assert granted >= REQUIRED_SCOPES, f"missing {REQUIRED_SCOPES - granted}"
    assert granted - REQUIRED_SCOPES <= ALLOWED_EXTRA_SCOPES, f"unexpected {granted - REQUIRED_SCOPES}"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_event_has_its_scope(path: Path) -> None:
    manifest = load_manifest(path)
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) <= set(EVENT_SCOPES), (
        f"an event without a known scope: {set(events) - set(EVENT_SCOPES)}"
    )
    needed = {EVENT_SCOPES[e] for e in events} - {None}
    assert needed <= scopes(manifest)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_people_can_talk_to_the_bot(path: Path) -> None:
    manifest = load_manifest(path)
    home = manifest["features"]["app_home"]
    assert home["messages_tab_enabled"] is True  # else chat.postMessage to a user: messages_tab_disabled
    assert home["messages_tab_read_only_enabled"] is False
    assert home["home_tab_enabled"] is True
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["token_rotation_enabled"] is False and settings["org_deploy_enabled"] is False


def test_development_manifest_uses_socket_mode_and_no_urls() -> None:
    manifest = load_manifest(DEV)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in manifest["settings"]["event_subscriptions"]
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert all("url" not in command for command in manifest["features"]["slash_commands"])


def test_http_manifest_has_every_url() -> None:
    manifest = load_manifest(HTTP)
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["event_subscriptions"]["request_url"] == REQUEST_URL
    assert settings["interactivity"]["request_url"] == REQUEST_URL
    assert [c.get("url") for c in manifest["features"]["slash_commands"]] == [REQUEST_URL] * 2


def test_both_manifests_declare_the_same_app() -> None:
    dev, http = load_manifest(DEV), load_manifest(HTTP)
    assert manifest_entry_points(DEV) == manifest_entry_points(HTTP)
    assert scopes(dev) == scopes(http)
    strip = [{k: v for k, v in c.items() if k != "url"} for c in http["features"]["slash_commands"]]
    assert strip == dev["features"]["slash_commands"]
    assert dev["features"]["shortcuts"] == http["features"]["shortcuts"]
    assert dev["display_information"] == http["display_information"]


def test_entry_points_match_the_ids_the_code_uses() -> None:
    points = manifest_entry_points(DEV)
    assert {name for kind, name in points if kind == "command"} == {c.value for c in Command}
    assert {name for kind, name in points if kind == "shortcut"} == {c.value for c in Callback}
    assert {name for kind, name in points if kind == "event"} == {
        "app_home_opened",
        "message.im",
        "message.groups",
    }
    assert {bolt_event_type(name) for kind, name in points if kind == "event"} == {
        "app_home_opened",
        "message",
    }


def test_the_slack_simulator_is_installed_like_the_manifest() -> None:
    manifest = load_manifest(DEV)
    assert scopes(manifest) == set(DEFAULT_SCOPES)
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == set(DEFAULT_BOT_EVENTS)


def test_helpdesk_command_escapes_mentions() -> None:
    # `/keydesk tap @user` must arrive as <@U123|name> so the user id is unambiguous.
    commands = {c["command"]: c for c in load_manifest(DEV)["features"]["slash_commands"]}
    assert commands["/keydesk"]["should_escape"] is True
