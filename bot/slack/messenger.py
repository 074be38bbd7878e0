"""The outbound gateway to Slack: every Web API call keydesk makes goes through here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import get_logger

log = get_logger(__name__)

# Errors meaning "the thing to remove is already gone": deleting is idempotent.
SUBMISSION_SETTLE_SECONDS = 0.5
_ALREADY_GONE = {"message_not_found", "channel_not_found", "thread_not_found"}


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    ts: str


@dataclass(frozen=True)
class SlackUser:
    id: str
    team_id: str | None
    enterprise_id: str | None
    email: str | None
    name: str
    real_name: str | None
    is_bot: bool
    deleted: bool
    is_restricted: bool
    is_ultra_restricted: bool
    is_stranger: bool
    tz: str | None
    tz_offset: int

    @property
    def display(self) -> str:
        return self.real_name or self.name


class SlackError(Exception):
    """A Slack Web API call failed; `code` is Slack's error string (e.g. 'not_in_channel')."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"Slack {method} failed: {code}")
        self.method = method
        self.code = code


def _error_code(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "unknown_error")
    except AttributeError:
        return "unknown_error"


def parse_user(raw: dict[str, Any]) -> SlackUser:
    profile = raw.get("profile") or {}
    enterprise = raw.get("enterprise_user") or {}
    return SlackUser(
        id=raw["id"],
        team_id=raw.get("team_id"),
        enterprise_id=enterprise.get("enterprise_id") or raw.get("enterprise_id"),
        email=(profile.get("email") or None),
        name=raw.get("name") or raw["id"],
        real_name=raw.get("real_name") or profile.get("real_name") or None,
        is_bot=bool(raw.get("is_bot")) or raw["id"] == "USLACKBOT",
        deleted=bool(raw.get("deleted")),
        is_restricted=bool(raw.get("is_restricted")),
        is_ultra_restricted=bool(raw.get("is_ultra_restricted")),
        is_stranger=bool(raw.get("is_stranger")),
        tz=raw.get("tz"),
        tz_offset=int(raw.get("tz_offset") or 0),
    )


class Messenger:
    """Thin, typed wrapper over AsyncWebClient; link previews are always off."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._dm_channels: dict[str, str] = {}
        self._submitted_at: dict[str, float] = {}

    def view_submitted(self, view_id: str) -> None:
        """Note that Slack just delivered a submission of `view_id` (see `update_view`)."""
        now = asyncio.get_running_loop().time()
        if len(self._submitted_at) > 1000:
            self._submitted_at = {
                v: at for v, at in self._submitted_at.items() if now - at < SUBMISSION_SETTLE_SECONDS
            }
        self._submitted_at[view_id] = now

    async def _call(self, method: str, **kwargs: Any) -> Any:
        # The SDK's named methods know each method's encoding (JSON, form or query string).
        call = getattr(self.client, method.replace(".", "_"))
        try:
            return await call(**kwargs)
        except SlackApiError as exc:
            raise SlackError(method, _error_code(exc)) from None

    async def dm_channel(self, user_id: str) -> str:
        if user_id not in self._dm_channels:
            response = await self._call("conversations.open", users=user_id)
            self._dm_channels[user_id] = response["channel"]["id"]
        return self._dm_channels[user_id]

    async def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
    ) -> PostedMessage:
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        response = await self._call("chat.postMessage", **kwargs)
        return PostedMessage(channel=response["channel"], ts=response["ts"])

    async def post_dm(
        self, user_id: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> PostedMessage:
        return await self.post(await self.dm_channel(user_id), text, blocks)

    async def update(
        self, message: PostedMessage, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        await self._call(
            "chat.update", channel=message.channel, ts=message.ts, text=text, blocks=blocks or []
        )

    async def delete(self, message: PostedMessage) -> bool:
        """Delete a message the bot posted; False when it was already gone."""
        try:
            await self._call("chat.delete", channel=message.channel, ts=message.ts)
        except SlackError as exc:
            if exc.code in _ALREADY_GONE:
                return False
            raise
        return True

    async def ephemeral(
        self, channel: str, user_id: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "user": user_id, "text": text}
        if blocks is not None:
            kwargs["blocks"] = blocks
        await self._call("chat.postEphemeral", **kwargs)

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        response = await self._call("views.open", trigger_id=trigger_id, view=view)
        return str(response["view"]["id"])

    async def update_view(self, view_id: str, view: dict[str, Any]) -> None:
        # Slack applies a submission's `response_action` when our HTTP answer reaches it. An update sent
        # by the listener right after its ack can overtake that answer and then be overwritten by it,
        # so an update to a view submitted a moment ago waits until the answer has surely landed.
        submitted = self._submitted_at.get(view_id)
        if submitted is not None:
            wait = submitted + SUBMISSION_SETTLE_SECONDS - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
        await self._call("views.update", view_id=view_id, view=view)

    async def push_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        response = await self._call("views.push", trigger_id=trigger_id, view=view)
        return str(response["view"]["id"])

    async def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        await self._call("views.publish", user_id=user_id, view=view)

    async def user(self, user_id: str) -> SlackUser:
        response = await self._call("users.info", user=user_id)
        return parse_user(response["user"])

    async def user_by_email(self, email: str) -> SlackUser | None:
        try:
            response = await self._call("users.lookupByEmail", email=email)
        except SlackError as exc:
            if exc.code == "users_not_found":
                return None
            raise
        return parse_user(response["user"])

    async def permalink(self, message: PostedMessage) -> str | None:
        try:
            response = await self._call("chat.getPermalink", channel=message.channel, message_ts=message.ts)
        except SlackError:
            return None
        return str(response.get("permalink") or "") or None
