"""Block Kit and view checks, with Slack's limits and its error style ("... [json-pointer:/blocks/0]").

Only the rules keydesk can trip over are enforced (lengths, counts, required fields, unknown keys on
the common blocks, duplicate ids, surfaces); anything not understood is let through.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from bot.sandbox.slack_sim.entities import JSON

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
VIEW_BYTES_MAX = 250 * 1024

_BLOCK_KEYS: dict[str, set[str]] = {
    "section": {"type", "block_id", "text", "fields", "accessory", "expand"},
    "divider": {"type", "block_id"},
    "header": {"type", "block_id", "text"},
    "actions": {"type", "block_id", "elements"},
    "context": {"type", "block_id", "elements"},
    "input": {"type", "block_id", "label", "element", "dispatch_action", "hint", "optional"},
    "image": {"type", "block_id", "image_url", "slack_file", "alt_text", "title"},
    "rich_text": {"type", "block_id", "elements"},
    "markdown": {"type", "block_id", "text"},
}
_OTHER_BLOCKS = {"video", "file", "table"}
_SURFACE_BLOCKS = {
    "message": set(_BLOCK_KEYS) | _OTHER_BLOCKS,
    "modal": (set(_BLOCK_KEYS) - {"markdown"}) | {"video"},
    "home": (set(_BLOCK_KEYS) - {"markdown"}) | {"video"},
}
_SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
}
_INTERACTIVE = _SELECTS | {
    "button",
    "overflow",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "workflow_button",
}
_TEXT_INPUTS = {"plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input"}
_ACCESSORIES = (_INTERACTIVE - {"datetimepicker"}) | {"image"}
_INPUT_ELEMENTS = (_INTERACTIVE - {"button", "overflow", "workflow_button"}) | _TEXT_INPUTS | {"file_input"}
_BUTTON_KEYS = {"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"}
_TEXT_KEYS = {"type", "text", "emoji", "verbatim"}
_MODAL_KEYS = {
    "type",
    "title",
    "blocks",
    "close",
    "submit",
    "private_metadata",
    "callback_id",
    "clear_on_close",
    "notify_on_close",
    "external_id",
    "submit_disabled",
}
_HOME_KEYS = {"type", "blocks", "private_metadata", "callback_id", "external_id"}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, ptr: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{ptr}]")

    def keys(self, obj: JSON, allowed: set[str], ptr: str) -> None:
        for key in sorted(set(obj) - allowed):
            self.err(f"{ptr}/{key}", f"invalid additional property: {key}")

    def length(self, value: Any, ptr: str, max_len: int, *, min_len: int = 0) -> None:
        if not isinstance(value, str):
            self.err(ptr, "must provide a string")
        elif len(value) > max_len:
            self.err(ptr, f"must be less than {max_len + 1} characters")
        elif len(value) < min_len:
            self.err(ptr, f"must be more than {min_len - 1} characters")

    def text(self, obj: Any, ptr: str, max_len: int, *, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.err(ptr, "must provide an object")
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
            self.err(f"{ptr}/type", "must be plain_text" if plain_only else "must be plain_text or mrkdwn")
        self.keys(obj, _TEXT_KEYS, ptr)
        if kind == "mrkdwn" and "emoji" in obj:
            self.err(f"{ptr}/emoji", "invalid additional property: emoji")
        self.length(obj.get("text"), f"{ptr}/text", max_len, min_len=1)

    def options(self, options: Any, ptr: str, *, most: int, least: int = 1) -> None:
        if not isinstance(options, list):
            self.err(ptr, "must provide an array")
            return
        if len(options) > most:
            self.err(ptr, f"must be less than {most + 1} items")
        if len(options) < least:
            self.err(ptr, f"must be at least {least} items")
        for i, option in enumerate(options):
            if not isinstance(option, dict):
                self.err(f"{ptr}/{i}", "must provide an object")
                continue
            self.text(option.get("text"), f"{ptr}/{i}/text", 75)
            self.length(option.get("value"), f"{ptr}/{i}/value", 150)

    def confirm(self, obj: Any, ptr: str) -> None:
        if not isinstance(obj, dict):
            self.err(ptr, "must provide an object")
            return
        self.text(obj.get("title"), f"{ptr}/title", 100, plain_only=True)
        self.text(obj.get("text"), f"{ptr}/text", 300)
        self.text(obj.get("confirm"), f"{ptr}/confirm", 30, plain_only=True)
        self.text(obj.get("deny"), f"{ptr}/deny", 30, plain_only=True)

    def element(self, el: Any, ptr: str, allowed: set[str]) -> None:
        if not isinstance(el, dict):
            self.err(ptr, "must provide an object")
            return
        kind = el.get("type")
        if kind not in allowed:
            self.err(f"{ptr}/type", f"unsupported type: {kind}")
            return
        if "action_id" in el:
            self.length(el["action_id"], f"{ptr}/action_id", 255, min_len=1)
        if "confirm" in el:
            self.confirm(el["confirm"], f"{ptr}/confirm")
        if "placeholder" in el:
            self.text(el["placeholder"], f"{ptr}/placeholder", 150, plain_only=True)
        if kind == "button":
            self.button(el, ptr)
        elif kind == "image":
            self.length(el.get("image_url"), f"{ptr}/image_url", 3000, min_len=1)
            self.length(el.get("alt_text"), f"{ptr}/alt_text", 2000, min_len=1)
        elif kind == "overflow":
            self.options(el.get("options"), f"{ptr}/options", most=5, least=1)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(el.get("options"), f"{ptr}/options", most=10)
        elif kind in ("static_select", "multi_static_select") and "option_groups" not in el:
            self.options(el.get("options"), f"{ptr}/options", most=100)
        elif kind == "plain_text_input":
            self.text_input(el, ptr)

    def button(self, el: JSON, ptr: str) -> None:
        self.keys(el, _BUTTON_KEYS, ptr)
        self.text(el.get("text"), f"{ptr}/text", 75, plain_only=True)
        if "value" in el:
            self.length(el["value"], f"{ptr}/value", 2000)
        if "url" in el:
            self.length(el["url"], f"{ptr}/url", 3000)
        if "style" in el and el["style"] not in ("primary", "danger"):
            self.err(f"{ptr}/style", "must be one of primary, danger")

    def text_input(self, el: JSON, ptr: str) -> None:
        if "max_length" in el and not (isinstance(el["max_length"], int) and 0 < el["max_length"] <= 3000):
            self.err(f"{ptr}/max_length", "must be between 1 and 3000")
        if "initial_value" in el:
            self.length(el["initial_value"], f"{ptr}/initial_value", 3000)

    def block(self, block: Any, ptr: str, surface: str) -> None:
        if not isinstance(block, dict):
            self.err(ptr, "must provide an object")
            return
        kind = block.get("type")
        if kind not in _SURFACE_BLOCKS[surface]:
            self.err(f"{ptr}/type", f"unsupported type: {kind}")
            return
        if kind in _BLOCK_KEYS:
            self.keys(block, _BLOCK_KEYS[kind], ptr)
        if "block_id" in block:
            self.length(block["block_id"], f"{ptr}/block_id", 255, min_len=1)
        getattr(self, f"block_{kind}", lambda _b, _p: None)(block, ptr)

    def block_section(self, block: JSON, ptr: str) -> None:
        if "text" not in block and "fields" not in block:
            self.err(ptr, "must provide text or fields")
        if "text" in block:
            self.text(block["text"], f"{ptr}/text", 3000)
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                self.err(f"{ptr}/fields", "must be between 1 and 10 items")
            else:
                for i, field in enumerate(fields):
                    self.text(field, f"{ptr}/fields/{i}", 2000)
        if "accessory" in block:
            self.element(block["accessory"], f"{ptr}/accessory", _ACCESSORIES)

    def block_header(self, block: JSON, ptr: str) -> None:
        self.text(block.get("text"), f"{ptr}/text", 150, plain_only=True)

    def block_actions(self, block: JSON, ptr: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            self.err(f"{ptr}/elements", "must be between 1 and 25 items")
            return
        for i, el in enumerate(elements):
            self.element(el, f"{ptr}/elements/{i}", _INTERACTIVE)

    def block_context(self, block: JSON, ptr: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            self.err(f"{ptr}/elements", "must be between 1 and 10 items")
            return
        for i, el in enumerate(elements):
            if isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn"):
                self.text(el, f"{ptr}/elements/{i}", 3000)
            else:
                self.element(el, f"{ptr}/elements/{i}", {"image"})

    def block_input(self, block: JSON, ptr: str) -> None:
        self.text(block.get("label"), f"{ptr}/label", 2000, plain_only=True)
        if "hint" in block:
            self.text(block["hint"], f"{ptr}/hint", 2000, plain_only=True)
        self.element(block.get("element"), f"{ptr}/element", _INPUT_ELEMENTS)

    def block_image(self, block: JSON, ptr: str) -> None:
        if "slack_file" not in block:
            self.length(block.get("image_url"), f"{ptr}/image_url", 3000, min_len=1)
        self.length(block.get("alt_text"), f"{ptr}/alt_text", 2000, min_len=1)

    def block_markdown(self, block: JSON, ptr: str) -> None:
        self.length(block.get("text"), f"{ptr}/text", 12000, min_len=1)

    def blocks(self, blocks: Any, ptr: str, surface: str, most: int) -> None:
        if not isinstance(blocks, list):
            self.err(ptr, "must provide an array")
            return
        if len(blocks) > most:
            self.err(ptr, f"must be less than {most + 1} items")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{ptr}/{i}", surface)
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if isinstance(block_id, str):
                if block_id in seen:
                    self.err(f"{ptr}/{i}/block_id", f"duplicate block_id: {block_id}")
                seen.add(block_id)
            if isinstance(block, dict):
                self.duplicate_actions(block, f"{ptr}/{i}")

    def duplicate_actions(self, block: JSON, ptr: str) -> None:
        seen: set[str] = set()
        for el in block_elements(block):
            action_id = el.get("action_id")
            if isinstance(action_id, str):
                if action_id in seen:
                    self.err(ptr, f"duplicate action_id: {action_id}")
                seen.add(action_id)


def block_elements(block: JSON) -> Iterator[JSON]:
    """The interactive elements of one block (accessory, actions elements, input element)."""
    if isinstance(block.get("accessory"), dict):
        yield block["accessory"]
    if block.get("type") == "actions" and isinstance(block.get("elements"), list):
        yield from (el for el in block["elements"] if isinstance(el, dict))
    if block.get("type") == "input" and isinstance(block.get("element"), dict):
        yield block["element"]


def message_block_errors(blocks: Any) -> list[str]:
    checker = _Checker()
    checker.blocks(blocks, "/blocks", "message", MESSAGE_BLOCKS_MAX)
    return checker.errors


def view_errors(view: Any, expect: str) -> list[str]:
    """Errors in a view payload for `expect` ("modal" or "home"); [] when Slack would accept it."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.err("/view", "must provide an object")
        return checker.errors
    if view.get("type") != expect:
        checker.err("/view/type", f"must be {expect}")
        return checker.errors
    checker.keys(view, _MODAL_KEYS if expect == "modal" else _HOME_KEYS, "/view")
    if expect == "modal":
        _modal_chrome(checker, view)
    checker.blocks(view.get("blocks"), "/view/blocks", expect, VIEW_BLOCKS_MAX)
    if "private_metadata" in view:
        checker.length(view["private_metadata"], "/view/private_metadata", 3000)
    for key in ("callback_id", "external_id"):
        if key in view:
            checker.length(view[key], f"/view/{key}", 255)
    return checker.errors


def _modal_chrome(checker: _Checker, view: JSON) -> None:
    checker.text(view.get("title"), "/view/title", 24, plain_only=True)
    for key in ("submit", "close"):
        if view.get(key) is not None:
            checker.text(view[key], f"/view/{key}", 24, plain_only=True)
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        blocks = []
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if has_input and view.get("submit") is None:
        checker.err("/view/submit", "submit is required when a view contains input blocks")


def view_too_large(view: JSON) -> bool:
    return len(json.dumps(view, separators=(",", ":")).encode()) > VIEW_BYTES_MAX


def with_ids(blocks: list[JSON], new_id: Callable[[], str]) -> list[JSON]:
    """A copy of `blocks` where every block and interactive element has an id, as Slack stores them."""
    filled: list[JSON] = json.loads(json.dumps(blocks))
    for block in filled:
        if isinstance(block, dict):
            block.setdefault("block_id", new_id())
            for el in block_elements(block):
                if el.get("type") in _INTERACTIVE | _TEXT_INPUTS | {"file_input"}:
                    el.setdefault("action_id", new_id())
    return filled
