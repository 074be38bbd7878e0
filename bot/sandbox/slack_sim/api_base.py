"""The Web API method table, typed parameter access, errors and the access rules shared by methods."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON, SimChannel, SimSlackUser

# Parameters that travel as JSON-encoded strings in form and query-string requests.
JSON_PARAMS = frozenset({"blocks", "attachments", "view", "metadata"})


class TokenKind(StrEnum):
    BOT = "bot"
    APP = "app"


class ApiError(Exception):
    """Slack's `{"ok": false, "error": code, ...}` answer."""

    def __init__(self, code: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.extra = extra

    def body(self) -> JSON:
        return {"ok": False, "error": self.code, **self.extra}


def invalid_arguments(*messages: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {m}" for m in messages]})


@dataclass(frozen=True)
class ApiRequest:
    method: str
    params: JSON
    token: str | None

    def opt(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value is None or value == "" else str(value)

    def required(self, name: str, error: str | None = None) -> str:
        value = self.opt(name)
        if value is None:
            raise ApiError(error) if error else invalid_arguments(f"missing required field: {name}")
        return value

    def flag(self, name: str) -> bool:
        value = self.params.get(name)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    def decoded(self, name: str, *, bad_format: str = "invalid_arguments") -> Any:
        """A JSON parameter, whether it came as a JSON value or as a JSON-encoded string."""
        value = self.params.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(bad_format) from None
        return value


Handler = Callable[[SimCore, ApiRequest], JSON]


@dataclass(frozen=True)
class MethodSpec:
    handler: Handler
    scope: str | None
    token: TokenKind


METHODS: dict[str, MethodSpec] = {}


def api_method(
    name: str, *, scope: str | None = None, token: TokenKind = TokenKind.BOT
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name] = MethodSpec(handler, scope, token)
        return handler

    return register


def require_scope(core: SimCore, scope: str) -> None:
    if scope not in core.config.scopes:
        raise ApiError("missing_scope", needed=scope, provided=",".join(sorted(core.config.scopes)))


def read_scope_for(channel: SimChannel, kind: str) -> str:
    """The scope a conversations.* read needs for this channel type (`kind` is "read" or "history")."""
    prefix = "im" if channel.is_im else "groups" if channel.is_private else "channels"
    return f"{prefix}:{kind}"


def visible_channel(core: SimCore, channel_id: str | None) -> SimChannel:
    """A channel the bot can see; Slack hides private channels the bot is not in."""
    channel = core.workspace.channels.get(channel_id or "")
    if channel is None or (channel.is_private and not core.workspace.bot_is_member(channel)):
        raise ApiError("channel_not_found")
    return channel


def user_or_error(core: SimCore, user_id: str | None, error: str = "user_not_found") -> SimSlackUser:
    user = core.workspace.users.get(user_id or "")
    if user is None:
        raise ApiError(error)
    return user
