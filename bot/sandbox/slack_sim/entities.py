"""What the simulated workspace holds, and what tests observe: users, channels, messages, views, calls."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

JSON = dict[str, Any]


class DeliveryKind(StrEnum):
    """What Slack sends the app; the values are Socket Mode's envelope types."""

    EVENTS_API = "events_api"
    SLASH_COMMANDS = "slash_commands"
    INTERACTIVE = "interactive"


class Transport(StrEnum):
    HTTP = "http"
    SOCKET = "socket"


class SimUsageError(Exception):
    """A test asked for something no real Slack user could do (or the simulator cannot do)."""


@dataclass
class SimSlackUser:
    """A workspace member. Mutable: tests may change an email, deactivate someone, and so on."""

    id: str
    name: str
    team_id: str
    real_name: str | None = None
    email: str | None = None
    tz: str = "Europe/London"
    is_admin: bool = False
    is_owner: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    deleted: bool = False
    is_bot: bool = False
    enterprise_id: str | None = None
    bot_id: str | None = None

    def to_api(self, home_team_id: str, now: datetime) -> JSON:
        zone = ZoneInfo(self.tz)
        local = now.astimezone(zone)
        offset = local.utcoffset()
        real_name = self.real_name or self.name
        profile: JSON = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "team": self.team_id,
        }
        if self.email and not self.is_bot:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        user: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "tz_label": local.tzname(),
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": int(now.timestamp()),
        }
        if self.team_id != home_team_id:
            user["is_stranger"] = True
        if self.enterprise_id:
            user["enterprise_user"] = {
                "id": self.id,
                "enterprise_id": self.enterprise_id,
                "is_admin": self.is_admin,
                "is_owner": self.is_owner,
                "teams": [self.team_id],
            }
        return user


@dataclass
class SimChannel:
    """A conversation: a public or private channel, or a bot DM (`is_im`)."""

    id: str
    name: str
    is_private: bool
    members: set[str]
    created: int
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False

    def to_api(self, viewer_id: str) -> JSON:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": viewer_id in self.members,
            "created": self.created,
            "num_members": len(self.members),
        }


@dataclass(frozen=True)
class SimMessage:
    """One message as it stands now (a new value replaces it on chat.update)."""

    channel: str
    ts: str
    text: str
    user: str
    team: str
    blocks: list[JSON] = field(default_factory=list)
    attachments: list[JSON] = field(default_factory=list)
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: JSON | None = None
    edited_ts: str | None = None
    ephemeral_to: str | None = None
    client_msg_id: str | None = None

    @property
    def is_bot(self) -> bool:
        return self.bot_id is not None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self) -> JSON:
        """The message object as Slack shows it in API responses and interaction payloads."""
        message: JSON = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "ts": self.ts,
            "team": self.team,
        }
        if self.blocks:
            message["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            message["attachments"] = copy.deepcopy(self.attachments)
        if self.bot_id:
            message["bot_id"] = self.bot_id
            message["app_id"] = self.app_id
            message["bot_profile"] = {"id": self.bot_id, "app_id": self.app_id, "team_id": self.team}
        if self.client_msg_id:
            message["client_msg_id"] = self.client_msg_id
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.reply_broadcast:
            message["subtype"] = "thread_broadcast"
        if self.metadata:
            message["metadata"] = copy.deepcopy(self.metadata)
        if self.edited_ts:
            message["edited"] = {"user": self.user, "ts": self.edited_ts}
        return message


@dataclass(frozen=True)
class SimView:
    """A modal in a user's stack, or a user's Home tab, as it stands now."""

    id: str
    user_id: str
    team_id: str
    app_id: str
    bot_id: str
    type: str
    blocks: list[JSON]
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    title: JSON | None = None
    submit: JSON | None = None
    close: JSON | None = None
    callback_id: str = ""
    private_metadata: str = ""
    external_id: str = ""
    clear_on_close: bool = False
    notify_on_close: bool = False
    state_values: JSON = field(default_factory=dict)
    # The last `response_action: errors` the app answered a submission with.
    errors: dict[str, str] | None = None

    def to_api(self) -> JSON:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": copy.deepcopy(self.blocks),
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": copy.deepcopy(self.state_values)},
            "hash": self.hash,
            "title": copy.deepcopy(self.title),
            "clear_on_close": self.clear_on_close,
            "notify_on_close": self.notify_on_close,
            "close": copy.deepcopy(self.close),
            "submit": copy.deepcopy(self.submit),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id,
            "app_id": self.app_id,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }


@dataclass(frozen=True)
class ApiCall:
    """One Web API request the bot made, and what the simulator answered."""

    method: str
    params: JSON
    token: str | None
    http_status: int
    response: JSON
    at: datetime

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return str(error) if error else None


@dataclass(frozen=True)
class SentRequest:
    """What the simulator sent the app, kept so that it can be redelivered as Slack would."""

    kind: DeliveryKind
    payload: JSON
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Delivery:
    """The app's answer to one request: its HTTP response, or its Socket Mode ack.

    `status` is the HTTP status (200 for an ack over the socket) and 0 when the app did not answer
    within Slack's 3-second window (`timed_out`). `payload` is the answer normalised the way Slack
    reads it: None for an empty ack, `{"text": ...}` for a plain-text body, else the JSON object.
    """

    status: int
    body: Any
    headers: dict[str, str]
    payload: JSON | None
    kind: DeliveryKind
    transport: Transport
    request: SentRequest
    elapsed: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.timed_out
