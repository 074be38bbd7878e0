"""chat.*: posting, updating and deleting the bot's messages, ephemerals and permalinks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sandbox.slack_sim.api_base import ApiError, ApiRequest, api_method, visible_channel
from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON, SimChannel
from bot.sandbox.slack_sim.validation import message_block_errors, with_ids

TEXT_TRUNCATED_AT = 40_000
UPDATE_TEXT_MAX = 4_000
ATTACHMENTS_MAX = 100


@dataclass(frozen=True)
class _Content:
    text: str | None
    blocks: list[JSON] | None
    attachments: list[JSON] | None
    markdown: str | None

    @property
    def empty(self) -> bool:
        return not (self.text or self.blocks or self.attachments or self.markdown)


def _content(core: SimCore, req: ApiRequest) -> _Content:
    blocks = req.decoded("blocks", bad_format="invalid_blocks_format") if "blocks" in req.params else None
    if blocks is not None and not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    if blocks:
        errors = message_block_errors(blocks)
        if errors:
            raise ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        blocks = with_ids(blocks, core.ids.block)
    attachments = req.decoded("attachments") if "attachments" in req.params else None
    if attachments is not None and (not isinstance(attachments, list) or len(attachments) > ATTACHMENTS_MAX):
        raise ApiError("too_many_attachments")
    text = req.params.get("text")
    markdown = req.opt("markdown_text")
    if markdown and (text or blocks):
        raise ApiError("markdown_text_conflict")
    return _Content(None if text is None else str(text), blocks, attachments, markdown)


def _metadata(req: ApiRequest) -> JSON | None:
    if "metadata" not in req.params:
        return None
    metadata = req.decoded("metadata", bad_format="invalid_metadata_format")
    if metadata in ({}, None):
        return None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
        raise ApiError("invalid_metadata_format")
    if not isinstance(metadata.get("event_payload", {}), dict):
        raise ApiError("invalid_metadata_schema")
    return metadata


def _postable(core: SimCore, ref: str) -> SimChannel:
    """The conversation a post goes to: a channel id or #name, a DM id, or a user id (their DM)."""
    ws = core.workspace
    channel: SimChannel | None
    if ref.startswith("#"):
        channel = ws.channel_by_name(ref[1:])
    elif ref[:1] in ("U", "W"):
        user = ws.users.get(ref)
        channel = ws.open_dm(user.id)[0] if user and not user.is_bot else None
    else:
        channel = ws.channels.get(ref)
    if channel is None:
        raise ApiError("channel_not_found")
    if channel.is_im:
        if not core.config.messages_tab_enabled:
            raise ApiError("messages_tab_disabled")
        return channel
    if channel.is_private and not ws.bot_is_member(channel):
        raise ApiError("channel_not_found")
    if channel.is_archived:
        raise ApiError("is_archived")
    if not ws.bot_is_member(channel) and "chat:write.public" not in core.config.scopes:
        raise ApiError("not_in_channel")
    return channel


def _warn_missing_text(core: SimCore, method: str, content: _Content, text: str) -> None:
    if (content.blocks or content.attachments) and not text:
        core.warn(f"{method} with blocks but no `text`: notifications and screen readers get nothing")


@api_method("chat.postMessage", scope="chat:write")
def post_message(core: SimCore, req: ApiRequest) -> JSON:
    channel = _postable(core, req.required("channel", "channel_not_found"))
    content = _content(core, req)
    if content.empty:
        raise ApiError("no_text")
    text = content.text or content.markdown or ""
    _warn_missing_text(core, "chat.postMessage", content, text)
    thread_ts = req.opt("thread_ts")
    if thread_ts:
        _check_thread(core, channel.id, thread_ts)
    warning = None
    if len(text) > TEXT_TRUNCATED_AT:
        text, warning = text[:TEXT_TRUNCATED_AT], "message_truncated"
    cfg = core.config
    message = core.workspace.post(
        channel.id,
        user=cfg.bot_user_id,
        text=text,
        team=cfg.team_id,
        blocks=content.blocks or [],
        attachments=content.attachments or [],
        bot_id=cfg.bot_id,
        app_id=cfg.app_id,
        thread_ts=thread_ts,
        reply_broadcast=bool(thread_ts) and req.flag("reply_broadcast"),
        metadata=_metadata(req),
    )
    body: JSON = {"channel": channel.id, "ts": message.ts, "message": message.to_api()}
    if warning:
        body.update(warning=warning, response_metadata={"warnings": [warning]})
    return body


def _check_thread(core: SimCore, channel_id: str, thread_ts: str) -> None:
    parent = core.workspace.find(channel_id, thread_ts)
    if parent is None:
        core.warn(f"chat.postMessage thread_ts={thread_ts} names no message in {channel_id}")
    elif parent.is_reply:
        core.warn(f"chat.postMessage thread_ts={thread_ts} is a reply; Slack wants the parent's ts")


@api_method("chat.update", scope="chat:write")
def update_message(core: SimCore, req: ApiRequest) -> JSON:
    channel = visible_channel(core, req.required("channel", "channel_not_found"))
    message = core.workspace.find(channel.id, req.required("ts", "message_not_found"))
    if message is None:
        raise ApiError("message_not_found")
    if message.bot_id != core.config.bot_id:
        raise ApiError("cant_update_message")
    content = _content(core, req)
    changes: dict[str, Any] = {}
    if content.text is not None or content.markdown:
        changes["text"] = content.text if content.text is not None else content.markdown
        if len(changes["text"]) > UPDATE_TEXT_MAX:
            raise ApiError("msg_too_long")
    if content.blocks is not None:
        changes["blocks"] = content.blocks
    if content.attachments is not None:
        changes["attachments"] = content.attachments
    if "metadata" in req.params:
        changes["metadata"] = _metadata(req)
    text = changes.get("text", message.text)
    if not (text or changes.get("blocks", message.blocks) or changes.get("attachments", message.attachments)):
        raise ApiError("no_text")
    _warn_missing_text(core, "chat.update", content, text)
    updated = core.workspace.replace(message, edited_ts=core.ids.ts(), **changes)
    return {"channel": channel.id, "ts": updated.ts, "text": updated.text, "message": updated.to_api()}


@api_method("chat.delete", scope="chat:write")
def delete_message(core: SimCore, req: ApiRequest) -> JSON:
    channel = visible_channel(core, req.required("channel", "channel_not_found"))
    message = core.workspace.find(channel.id, req.required("ts", "message_not_found"))
    if message is None:
        raise ApiError("message_not_found")
    if message.bot_id != core.config.bot_id:
        raise ApiError("cant_delete_message")
    core.workspace.delete(message)
    return {"channel": channel.id, "ts": message.ts}


@api_method("chat.postEphemeral", scope="chat:write")
def post_ephemeral(core: SimCore, req: ApiRequest) -> JSON:
    channel = _postable(core, req.required("channel", "channel_not_found"))
    user_id = req.required("user", "user_not_in_channel")
    if user_id not in channel.members:
        raise ApiError("user_not_in_channel")
    content = _content(core, req)
    if content.empty:
        raise ApiError("no_text")
    text = content.text or content.markdown or ""
    _warn_missing_text(core, "chat.postEphemeral", content, text)
    message = core.workspace.post_ephemeral(
        channel.id, user_id, text=text, blocks=content.blocks or [], thread_ts=req.opt("thread_ts")
    )
    return {"message_ts": message.ts}


@api_method("chat.getPermalink")
def get_permalink(core: SimCore, req: ApiRequest) -> JSON:
    channel = visible_channel(core, req.required("channel", "channel_not_found"))
    message = core.workspace.find(channel.id, req.required("message_ts", "message_not_found"))
    if message is None:
        raise ApiError("message_not_found")
    link = f"{core.config.team_url}archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}
