"""The payloads Slack sends an app, shaped like the real ones (events, commands, interactions)."""

from __future__ import annotations

import base64
import json
from typing import Any

from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON, SimChannel, SimMessage, SimSlackUser, SimView


def team_ref(core: SimCore) -> JSON:
    cfg = core.config
    team: JSON = {"id": cfg.team_id, "domain": cfg.team_domain}
    if cfg.enterprise_id:
        team.update(enterprise_id=cfg.enterprise_id, enterprise_name=cfg.enterprise_name)
    return team


def enterprise_ref(core: SimCore) -> JSON | None:
    cfg = core.config
    return {"id": cfg.enterprise_id, "name": cfg.enterprise_name} if cfg.enterprise_id else None


def user_ref(user: SimSlackUser) -> JSON:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": user.team_id}


def _action_ts(core: SimCore) -> str:
    return f"{core.clock.now().timestamp():.6f}"


# --- Events API -------------------------------------------------------------------------------


def event_callback(core: SimCore, event: JSON) -> JSON:
    cfg = core.config
    context = json.dumps(
        {"et": event["type"], "tid": cfg.team_id, "aid": cfg.app_id, "cid": event.get("channel")}
    )
    body: JSON = {
        "token": cfg.verification_token,
        "team_id": cfg.team_id,
        "context_team_id": cfg.team_id,
        "context_enterprise_id": cfg.enterprise_id,
        "api_app_id": cfg.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": core.ids.event(),
        "event_time": core.now_epoch(),
        "authorizations": [
            {
                "enterprise_id": cfg.enterprise_id,
                "team_id": cfg.team_id,
                "user_id": cfg.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + base64.urlsafe_b64encode(context.encode()).decode().rstrip("="),
    }
    if cfg.enterprise_id:
        body["enterprise_id"] = cfg.enterprise_id
    return body


def rich_text(text: str) -> list[JSON]:
    """The rich_text block Slack's clients attach to what a person types."""
    return [
        {
            "type": "rich_text",
            "block_id": "sim00",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


def message_event(
    core: SimCore,
    message: SimMessage,
    channel: SimChannel,
    user: SimSlackUser,
    parent_user_id: str | None = None,
) -> JSON:
    event: JSON = {
        "type": "message",
        "user": user.id,
        "text": message.text,
        "ts": message.ts,
        "team": user.team_id,
        "blocks": message.blocks,
        "client_msg_id": message.client_msg_id,
        "channel": channel.id,
        "event_ts": message.ts,
        "channel_type": "im" if channel.is_im else "group" if channel.is_private else "channel",
    }
    if user.team_id != core.config.team_id:
        event.update(user_team=user.team_id, source_team=user.team_id)
    if message.thread_ts:
        event["thread_ts"] = message.thread_ts
        if parent_user_id:
            event["parent_user_id"] = parent_user_id
    return event


def app_home_opened(
    core: SimCore, user: SimSlackUser, channel_id: str, tab: str, view: SimView | None
) -> JSON:
    event: JSON = {
        "type": "app_home_opened",
        "user": user.id,
        "channel": channel_id,
        "tab": tab,
        "event_ts": _action_ts(core),
    }
    if view is not None and tab == "home":
        event["view"] = view.to_api()
    return event


# --- slash commands ---------------------------------------------------------------------------


def slash_command(
    core: SimCore,
    user: SimSlackUser,
    command: str,
    text: str,
    channel: SimChannel,
    trigger_id: str,
    response_url: str,
) -> dict[str, str]:
    cfg = core.config
    fields = {
        "token": cfg.verification_token,
        "team_id": cfg.team_id,
        "team_domain": cfg.team_domain,
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": cfg.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    if cfg.enterprise_id:
        fields.update(enterprise_id=cfg.enterprise_id, enterprise_name=cfg.enterprise_name)
    return fields


# --- interactivity ----------------------------------------------------------------------------


def _interaction(core: SimCore, kind: str, user: SimSlackUser, **fields: Any) -> JSON:
    return {
        "type": kind,
        "user": user_ref(user),
        "api_app_id": core.config.app_id,
        "token": core.config.verification_token,
        "team": team_ref(core),
        "enterprise": enterprise_ref(core),
        "is_enterprise_install": False,
        **fields,
    }


def block_actions_on_message(
    core: SimCore,
    user: SimSlackUser,
    message: SimMessage,
    channel: SimChannel,
    action: JSON,
    trigger_id: str,
    response_url: str,
    state: JSON,
) -> JSON:
    container = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": channel.id,
        "is_ephemeral": message.ephemeral_to is not None,
    }
    if message.thread_ts:
        container["thread_ts"] = message.thread_ts
    fields: JSON = {
        "container": container,
        "trigger_id": trigger_id,
        "channel": {"id": channel.id, "name": "directmessage" if channel.is_im else channel.name},
        "state": {"values": state},
        "response_url": response_url,
        "actions": [action],
    }
    if message.ephemeral_to is None:
        fields["message"] = message.to_api()
    return _interaction(core, "block_actions", user, **fields)


def block_actions_on_view(
    core: SimCore, user: SimSlackUser, view: SimView, action: JSON, trigger_id: str
) -> JSON:
    return _interaction(
        core,
        "block_actions",
        user,
        container={"type": "view", "view_id": view.id},
        trigger_id=trigger_id,
        view=view.to_api(),
        actions=[action],
    )


def view_submission(core: SimCore, user: SimSlackUser, view: SimView, trigger_id: str) -> JSON:
    return _interaction(
        core, "view_submission", user, trigger_id=trigger_id, view=view.to_api(), response_urls=[]
    )


def view_closed(core: SimCore, user: SimSlackUser, view: SimView, is_cleared: bool) -> JSON:
    return _interaction(core, "view_closed", user, view=view.to_api(), is_cleared=is_cleared)


def global_shortcut(core: SimCore, user: SimSlackUser, callback_id: str, trigger_id: str) -> JSON:
    payload = _interaction(core, "shortcut", user, callback_id=callback_id, trigger_id=trigger_id)
    payload["action_ts"] = _action_ts(core)
    payload["user"] = {"id": user.id, "username": user.name, "team_id": user.team_id}
    return payload


def action_ts(core: SimCore) -> str:
    return _action_ts(core)
