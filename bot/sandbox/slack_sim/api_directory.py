"""auth.*, users.*, conversations.*, usergroups.* and apps.connections.open."""

from __future__ import annotations

from bot.sandbox.slack_sim.api_base import (
    ApiError,
    ApiRequest,
    TokenKind,
    api_method,
    read_scope_for,
    require_scope,
    user_or_error,
    visible_channel,
)
from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON


@api_method("auth.test")
def auth_test(core: SimCore, _req: ApiRequest) -> JSON:
    cfg = core.config
    body: JSON = {
        "url": cfg.team_url,
        "team": cfg.team_name,
        "user": cfg.bot_name,
        "team_id": cfg.team_id,
        "user_id": cfg.bot_user_id,
        "bot_id": cfg.bot_id,
        "is_enterprise_install": False,
    }
    if cfg.enterprise_id:
        body["enterprise_id"] = cfg.enterprise_id
    return body


@api_method("users.info", scope="users:read")
def users_info(core: SimCore, req: ApiRequest) -> JSON:
    user = user_or_error(core, req.required("user", "user_not_found"))
    body = user.to_api(core.config.team_id, core.clock.now())
    if req.flag("include_locale"):
        body["locale"] = "en-GB"
    return {"user": body}


@api_method("users.lookupByEmail", scope="users:read.email")
def users_lookup_by_email(core: SimCore, req: ApiRequest) -> JSON:
    email = req.required("email", "users_not_found").strip().lower()
    for user in core.workspace.users.values():
        # Deactivated users are not found (documented); neither are people of other workspaces.
        if (user.email or "").lower() == email and not user.deleted and user.team_id == core.config.team_id:
            return {"user": user.to_api(core.config.team_id, core.clock.now())}
    raise ApiError("users_not_found")


@api_method("conversations.open", scope="im:write")
def conversations_open(core: SimCore, req: ApiRequest) -> JSON:
    channel_id = req.opt("channel")
    if channel_id:
        channel = core.workspace.channels.get(channel_id)
        if channel is None or not channel.is_im:
            raise ApiError("channel_not_found")
        return {"no_op": True, "already_open": True, "channel": _im_body(core, channel.id, req)}
    users = [u.strip() for u in (req.opt("users") or "").split(",") if u.strip()]
    if not users:
        raise ApiError("users_list_not_supplied")
    if len(users) > 1:
        raise ApiError("sim_mpim_not_supported")
    user = user_or_error(core, users[0])
    if user.deleted:
        raise ApiError("user_disabled")
    existing = core.workspace.dm_with(user.id)
    if existing is None and req.flag("prevent_creation"):
        return {"no_op": True}
    channel, already = core.workspace.open_dm(user.id)
    body: JSON = {"channel": _im_body(core, channel.id, req)}
    if already:
        body.update(no_op=True, already_open=True)
    return body


def _im_body(core: SimCore, channel_id: str, req: ApiRequest) -> JSON:
    channel = core.workspace.channels[channel_id]
    if req.flag("return_im"):
        return {**channel.to_api(core.config.bot_user_id), "is_open": True}
    return {"id": channel.id}


@api_method("conversations.info")
def conversations_info(core: SimCore, req: ApiRequest) -> JSON:
    channel = visible_channel(core, req.required("channel", "channel_not_found"))
    require_scope(core, read_scope_for(channel, "read"))
    return {"channel": channel.to_api(core.config.bot_user_id)}


@api_method("conversations.members")
def conversations_members(core: SimCore, req: ApiRequest) -> JSON:
    channel = visible_channel(core, req.required("channel", "channel_not_found"))
    require_scope(core, read_scope_for(channel, "read"))
    return {"members": sorted(channel.members), "response_metadata": {"next_cursor": ""}}


@api_method("usergroups.users.list", scope="usergroups:read")
def usergroups_users_list(core: SimCore, req: ApiRequest) -> JSON:
    group = req.required("usergroup", "no_such_subteam")
    if group not in core.workspace.usergroups:
        raise ApiError("no_such_subteam")
    return {"users": list(core.workspace.usergroups[group])}


@api_method("apps.connections.open", token=TokenKind.APP)
def apps_connections_open(core: SimCore, _req: ApiRequest) -> JSON:
    ticket = core.ids.secret()
    core.ws_tickets.add(ticket)
    return {"url": f"{core.ws_url}?ticket={ticket}&app_id={core.config.app_id}"}
