"""What a person's click or form entry looks like to Slack: the action object and the state values."""

from __future__ import annotations

import copy
from typing import Any

from bot.sandbox.slack_sim.entities import JSON, SimUsageError
from bot.sandbox.slack_sim.validation import block_elements

_VALUE_INPUTS = {"plain_text_input", "email_text_input", "url_text_input", "number_input"}
_ONE_OPTION = {"static_select", "external_select", "radio_buttons", "overflow"}
_MANY_OPTIONS = {"multi_static_select", "multi_external_select", "checkboxes"}
_PICKERS = {
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}
_INITIAL = {
    "users_select": "initial_user",
    "multi_users_select": "initial_users",
    "conversations_select": "initial_conversation",
    "multi_conversations_select": "initial_conversations",
    "channels_select": "initial_channel",
    "multi_channels_select": "initial_channels",
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "datetimepicker": "initial_date_time",
}


def find_element(blocks: list[JSON], action_id: str, block_id: str | None = None) -> tuple[str, JSON] | None:
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        for el in block_elements(block):
            if el.get("action_id") == action_id:
                return str(block["block_id"]), el
    return None


def _all_options(element: JSON) -> list[JSON]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option(element: JSON, wanted: Any) -> JSON:
    if isinstance(wanted, dict):
        wanted = wanted.get("value")
    for option in _all_options(element):
        if option.get("value") == wanted:
            return copy.deepcopy(option)
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": str(wanted)}, "value": str(wanted)}
    raise SimUsageError(f"{element.get('action_id')}: no option with value {wanted!r}")


def action_payload(
    element: JSON, block_id: str, action_ts: str, *, value: str | None, selected: Any, forge: bool
) -> JSON:
    """The `actions[0]` Slack sends when someone uses `element`."""
    kind = element.get("type")
    action: JSON = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "type": kind,
        "action_ts": action_ts,
    }
    if kind == "button":
        action["text"] = copy.deepcopy(element.get("text"))
        real = element.get("value")
        if value is not None and value != real and not forge:
            raise SimUsageError(f"button {element['action_id']} carries value {real!r}, not {value!r}")
        sent = value if value is not None else real
        if sent is not None:
            action["value"] = sent
        if "style" in element:
            action["style"] = element["style"]
        return action
    choice = selected if selected is not None else value
    action.update(_selection(element, choice))
    return action


def _selection(element: JSON, choice: Any) -> JSON:
    kind = str(element.get("type"))
    if kind in _ONE_OPTION:
        return {"selected_option": None if choice is None else _option(element, choice)}
    if kind in _MANY_OPTIONS:
        items = choice if isinstance(choice, list) else [] if choice is None else [choice]
        return {"selected_options": [_option(element, c) for c in items]}
    if kind in _PICKERS:
        return {_PICKERS[kind]: choice}
    if kind in _VALUE_INPUTS:
        return {"value": choice}
    if kind == "rich_text_input":
        return {
            "rich_text_value": choice if isinstance(choice, dict) or choice is None else _rich(str(choice))
        }
    raise SimUsageError(f"the simulator cannot operate a {kind} element")


def _rich(text: str) -> JSON:
    return {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }


def state_entry(element: JSON, given: Any) -> JSON:
    """One `state.values[block][action]` entry; `given` may be the full dict or a shorthand value."""
    kind = str(element.get("type"))
    if isinstance(given, dict) and ("type" in given or kind not in _ONE_OPTION):
        return {"type": kind, **given}
    return {"type": kind, **_selection(element, given)}


def initial_entry(element: JSON) -> JSON:
    """What the state holds for an input the person did not touch: its initial value, or nothing."""
    kind = str(element.get("type"))
    if kind in _VALUE_INPUTS:
        return {"type": kind, "value": element.get("initial_value")}
    if kind in _ONE_OPTION:
        return {"type": kind, "selected_option": copy.deepcopy(element.get("initial_option"))}
    if kind in _MANY_OPTIONS:
        return {"type": kind, "selected_options": copy.deepcopy(element.get("initial_options") or [])}
    if kind in _INITIAL:
        return {"type": kind, _PICKERS[kind]: element.get(_INITIAL[kind])}
    if kind == "rich_text_input":
        return {"type": kind, "rich_text_value": copy.deepcopy(element.get("initial_value"))}
    return {"type": kind}


def is_empty(entry: JSON) -> bool:
    meaningful = [v for k, v in entry.items() if k != "type"]
    return all(v in (None, "", [], {}) for v in meaningful)


def client_side_problems(element: JSON, entry: JSON) -> list[str]:
    """Checks Slack's clients make before a form can be submitted (length limits on text inputs)."""
    value = entry.get("value")
    if element.get("type") != "plain_text_input" or not isinstance(value, str):
        return []
    problems = []
    if "min_length" in element and len(value) < int(element["min_length"]):
        problems.append(f"{element['action_id']}: shorter than min_length {element['min_length']}")
    if "max_length" in element and len(value) > int(element["max_length"]):
        problems.append(f"{element['action_id']}: longer than max_length {element['max_length']}")
    return problems
