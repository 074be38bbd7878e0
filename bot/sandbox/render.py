"""Render Slack messages and views in a terminal, the way a person would read them in Slack."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Group, RenderableType
from rich.emoji import Emoji
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

_DATE = re.compile(r"<!date\^\d+\^[^|]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_CODE = re.compile(r"`{1,3}([^`]+)`{1,3}")
_EMOJI_ALIASES = {
    ":hourglass_flowing_sand:": "⏳",
    ":rotating_light:": "🚨",
    ":no_entry:": "⛔",
    ":white_check_mark:": "✅",
    ":grey_question:": "❔",
}


def mrkdwn_to_text(text: str, names: dict[str, str] | None = None) -> str:
    names = names or {}
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_to_rich(text: str, names: dict[str, str] | None = None) -> Text:
    """Slack mrkdwn as styled terminal text: bold, italics, code and emoji as Slack shows them."""
    plain_text = mrkdwn_to_text(text, names)
    for code, char in _EMOJI_ALIASES.items():
        plain_text = plain_text.replace(code, char)
    plain_text = Emoji.replace(escape(plain_text))
    plain_text = _BOLD.sub(r"[bold]\1[/bold]", plain_text)
    plain_text = _ITALIC.sub(r"[italic]\1[/italic]", plain_text)
    plain_text = _CODE.sub(r"[reverse]\1[/reverse]", plain_text)
    return Text.from_markup(plain_text)


def _text_of(obj: dict[str, Any] | None, names: dict[str, str]) -> str:
    if not obj:
        return ""
    return mrkdwn_to_text(str(obj.get("text", "")), names)


def _rich_of(obj: dict[str, Any] | None, names: dict[str, str]) -> Text:
    return mrkdwn_to_rich(str((obj or {}).get("text", "")), names)


def _element(element: dict[str, Any], names: dict[str, str]) -> Text:
    kind = element.get("type")
    if kind == "button":
        style = {"primary": "bold white on green", "danger": "bold white on red"}.get(
            element.get("style", ""), "bold on grey23"
        )
        return Text(f" {_text_of(element.get('text'), names)} ", style=style)
    if kind in ("static_select", "users_select", "radio_buttons", "checkboxes"):
        placeholder = _text_of(element.get("placeholder"), names) or kind.replace("_", " ")
        return Text(f"[{placeholder} ▾]", style="cyan")
    if kind == "plain_text_input":
        return Text("[ text field ]", style="cyan")
    return Text(_text_of(element, names))


def block_lines(blocks: list[dict[str, Any]], names: dict[str, str] | None = None) -> list[RenderableType]:
    names = names or {}
    out: list[RenderableType] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            out.append(Text(_text_of(block.get("text"), names), style="bold underline"))
        elif kind == "section":
            if block.get("text"):
                out.append(_rich_of(block["text"], names))
            for field in block.get("fields", []):
                out.append(_rich_of(field, names))
            if block.get("accessory"):
                out.append(_element(block["accessory"], names))
        elif kind == "context":
            line = Text("  ").join(_rich_of(e, names) for e in block.get("elements", []))
            line.stylize("dim")
            out.append(line)
        elif kind == "divider":
            out.append(Text("─" * 40, style="dim"))
        elif kind == "actions":
            row = Text()
            for element in block.get("elements", []):
                row.append_text(_element(element, names))
                row.append("  ")
            out.append(row)
        elif kind == "input":
            label = _text_of(block.get("label"), names)
            out.append(
                Text(f"{label}: ", style="bold").append_text(_element(block.get("element", {}), names))
            )
    return out


def message_panel(
    author: str,
    where: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    names: dict[str, str] | None = None,
) -> Panel:
    body: list[RenderableType] = block_lines(blocks, names) if blocks else [mrkdwn_to_rich(text, names)]
    return Panel(Group(*body), title=f"[bold]{author}[/] · {where}", title_align="left", border_style="blue")


def view_panel(view: dict[str, Any], where: str, names: dict[str, str] | None = None) -> Panel:
    title = _text_of(view.get("title"), names or {}) or ("App Home" if view.get("type") == "home" else "")
    body = block_lines(view.get("blocks", []), names)
    if view.get("submit"):
        body.append(Text(f" {_text_of(view['submit'], names or {})} ", style="bold white on green"))
    return Panel(
        Group(*body), title=f"[bold]{title}[/] · {where}", title_align="left", border_style="magenta"
    )


def user_panel(author: str, where: str, text: str) -> Panel:
    return Panel(Text(text), title=f"[bold]{author}[/] · {where}", title_align="right", border_style="green")
