"""What Slack does with an app's answers: ack bodies, `response_action`s and `response_url` posts."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.sandbox.slack_sim.api_base import ApiError
from bot.sandbox.slack_sim.api_views import checked_view
from bot.sandbox.slack_sim.config import RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL_SECONDS
from bot.sandbox.slack_sim.core import ResponseUrl, SimCore
from bot.sandbox.slack_sim.entities import JSON, Delivery, SimView
from bot.sandbox.slack_sim.validation import block_elements, message_block_errors, with_ids
from bot.sandbox.slack_sim.views import STACK_MAX


def show_message_answer(
    core: SimCore, channel_id: str, user_id: str, answer: JSON, *, thread_ts: str | None = None
) -> None:
    """A command's ack or response_url post: ephemeral for the user unless `response_type: in_channel`."""
    blocks = answer.get("blocks") or []
    errors = message_block_errors(blocks) if blocks else []
    if errors:
        core.protocol_error(f"answer with invalid blocks: {errors}")
        return
    text = str(answer.get("text") or "")
    if not text and not blocks:
        return
    blocks = with_ids(blocks, core.ids.block)
    ws, cfg = core.workspace, core.config
    if answer.get("response_type") == "in_channel":
        ws.post(
            channel_id,
            user=cfg.bot_user_id,
            text=text,
            team=cfg.team_id,
            blocks=blocks,
            bot_id=cfg.bot_id,
            app_id=cfg.app_id,
            thread_ts=answer.get("thread_ts") or thread_ts,
        )
    else:
        ws.post_ephemeral(channel_id, user_id, text=text, blocks=blocks)


def apply_slash_ack(core: SimCore, channel_id: str, user_id: str, delivery: Delivery) -> None:
    if delivery.ok and delivery.payload:
        show_message_answer(core, channel_id, user_id, delivery.payload)


def apply_submission_answer(core: SimCore, view: SimView, delivery: Delivery) -> None:
    """Close, update, push or annotate the modal stack per the app's answer to view_submission."""
    if not delivery.ok:
        return  # Slack keeps the modal open and shows the user an error
    answer = delivery.payload or {}
    action = answer.get("response_action")
    registry = core.views
    if action is None:
        if answer:
            core.protocol_error(f"view_submission answered without response_action: {sorted(answer)}")
        registry.pop(view.user_id)
    elif action == "clear":
        registry.clear(view.user_id)
    elif action == "errors":
        _apply_errors(core, view, answer.get("errors"))
    elif action in ("update", "push"):
        _apply_view_answer(core, view, action, answer.get("view"))
    else:
        core.protocol_error(f"unknown response_action {action!r}")


def _apply_errors(core: SimCore, view: SimView, errors: Any) -> None:
    inputs = {b.get("block_id") for b in view.blocks if b.get("type") == "input"}
    if not isinstance(errors, dict) or not errors:
        core.protocol_error("response_action errors without an errors object")
        return
    unknown = sorted(set(errors) - inputs)
    if unknown:
        core.protocol_error(f"response_action errors names blocks that are not inputs of the view: {unknown}")
        return
    core.views.set(replace(view, errors={str(k): str(v) for k, v in errors.items()}))


def _apply_view_answer(core: SimCore, view: SimView, action: str, payload: Any) -> None:
    try:
        checked = checked_view(core, payload, "modal", replacing=view.id if action == "update" else None)
    except ApiError as exc:
        core.protocol_error(f"response_action {action} with an invalid view: {exc.body()}")
        return
    registry = core.views
    if action == "update":
        registry.update(view, checked)
        return
    stack = registry.stack(view.user_id)
    if len(stack) >= STACK_MAX:
        core.protocol_error("response_action push beyond 3 views")
        return
    registry.push(registry.build(view.user_id, checked, root=stack[0].id, previous=stack[-1].id))


def inputs_of(view: SimView) -> dict[str, dict[str, JSON]]:
    """block_id -> action_id -> element, for the view's input blocks."""
    found: dict[str, dict[str, JSON]] = {}
    for block in view.blocks:
        if block.get("type") == "input":
            for el in block_elements(block):
                found.setdefault(block["block_id"], {})[el["action_id"]] = el
    return found


class ResponseUrlEndpoint:
    """POST /hooks/{key}: what `respond()` reaches. Five uses in thirty minutes, as Slack allows."""

    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.posts: list[JSON] = []

    async def handle(self, request: web.Request) -> web.Response:
        target = self.core.response_urls.get(request.match_info["key"])
        raw = await request.text()
        self.core.record_outbound(raw)
        if target is None:
            return web.Response(status=404, text="no_service")
        age = (self.core.clock.now() - target.issued_at).total_seconds()
        if age > RESPONSE_URL_TTL_SECONDS:
            return web.Response(status=404, text="expired_url")
        if target.uses >= RESPONSE_URL_MAX_USES:
            return web.Response(status=404, text="used_url")
        try:
            answer = json.loads(raw)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(answer, dict):
            return web.Response(status=400, text="invalid_payload")
        target.uses += 1
        self.posts.append(answer)
        self._apply(target, answer)
        return web.json_response({"ok": True})

    def _apply(self, target: ResponseUrl, answer: JSON) -> None:
        ws = self.core.workspace
        original = None
        if target.message_ts:
            find = ws.find_ephemeral if target.is_ephemeral else ws.find
            original = find(target.channel_id, target.message_ts)
        if answer.get("delete_original") and original is not None:
            (ws.delete_ephemeral if target.is_ephemeral else ws.delete)(original)
        elif answer.get("replace_original") and original is not None:
            blocks = with_ids(answer.get("blocks") or [], self.core.ids.block)
            changes = {"text": str(answer.get("text") or ""), "blocks": blocks}
            if target.is_ephemeral:
                ws.replace_ephemeral(original, **changes)
            else:
                ws.replace(original, edited_ts=self.core.ids.ts(), **changes)
        else:
            thread = answer.get("thread_ts") or (original.thread_ts if original else None)
            show_message_answer(self.core, target.channel_id, target.user_id, answer, thread_ts=thread)
