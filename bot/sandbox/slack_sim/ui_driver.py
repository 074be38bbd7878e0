"""People using the bot's UI: clicking elements of messages and views, submitting and closing modals."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bot.sandbox.slack_sim import payloads
from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import (
    JSON,
    Delivery,
    DeliveryKind,
    SimMessage,
    SimSlackUser,
    SimUsageError,
    SimView,
)
from bot.sandbox.slack_sim.interactions import (
    action_payload,
    client_side_problems,
    find_element,
    initial_entry,
    is_empty,
    state_entry,
)
from bot.sandbox.slack_sim.responses import apply_submission_answer, inputs_of
from bot.sandbox.slack_sim.validation import block_elements
from bot.sandbox.slack_sim.workspace import Workspace

_STATELESS = {"button", "overflow", "workflow_button", "image"}


class UiDriverMixin:
    core: SimCore

    if TYPE_CHECKING:

        def user(self, user_id: str) -> SimSlackUser: ...

        def find_action(self, user_id: str, action_id: str) -> SimMessage | SimView: ...

        async def deliver(
            self, kind: DeliveryKind, payload: JSON, *, retry_num: int = 0, retry_reason: str = ""
        ) -> Delivery: ...

    async def click(
        self,
        user_id: str,
        action_id: str,
        *,
        value: str | None = None,
        message: SimMessage | None = None,
        view_id: str | None = None,
        block_id: str | None = None,
        selected_option: Any = None,
        forge: bool = False,
        stale: bool = False,
    ) -> Delivery:
        """The user uses an element (button, select, ...) of a message or a view: `block_actions`.

        Without `message` or `view_id` the element is looked up where the user can see it (top modal,
        Home, newest messages). `value` must match a button's own value unless `forge=True`; for
        selects it picks the option. `forge=True` also lets a user act on what they cannot see.
        The message as it stands now is used, unless `stale=True`: then `message` is pressed as
        given, like a client that has not caught up with an update or a deletion yet.
        """
        press = _Press(action_id, block_id, value, selected_option, forge, stale)
        user = self.user(user_id)
        if message is None and view_id is None:
            target = self.find_action(user.id, action_id)
            if isinstance(target, SimView):
                view_id = target.id
            else:
                message = target
        if view_id is not None:
            return await self._click_view(user, view_id, press)
        assert message is not None
        return await self._click_message(user, message, press)

    async def _click_message(self, user: SimSlackUser, message: SimMessage, press: _Press) -> Delivery:
        ws = self.core.workspace
        ephemeral = message.ephemeral_to is not None
        current = message if press.stale else _now(ws, message)
        channel = ws.channels[current.channel]
        can_see = current.ephemeral_to == user.id if ephemeral else user.id in channel.members
        if not (can_see or press.forge):
            raise SimUsageError(f"{user.id} cannot see message {current.ts} in {channel.id}")
        bid, element = _pressable(current.blocks, press, f"message {current.ts}")
        action = _action(self.core, element, bid, press)
        state = _message_state(current.blocks, bid, action)
        trigger = self.core.views.issue_trigger(user.id)
        response_url = self.core.issue_response_url(channel.id, user.id, current.ts, is_ephemeral=ephemeral)
        payload = payloads.block_actions_on_message(
            self.core, user, current, channel, action, trigger, response_url, state
        )
        return await self.deliver(DeliveryKind.INTERACTIVE, payload)

    async def _click_view(self, user: SimSlackUser, view_id: str, press: _Press) -> Delivery:
        view = self._live_view(user, view_id, press.forge)
        bid, element = _pressable(view.blocks, press, f"view {view_id}")
        action = _action(self.core, element, bid, press)
        if element.get("type") not in _STATELESS:
            entry = {k: v for k, v in action.items() if k not in ("action_id", "block_id", "action_ts")}
            block_state = {**view.state_values.get(bid, {}), element["action_id"]: entry}
            view = replace(view, state_values={**view.state_values, bid: block_state})
            self.core.views.set(view)
        trigger = self.core.views.issue_trigger(user.id, from_view=view.id)
        return await self.deliver(
            DeliveryKind.INTERACTIVE, payloads.block_actions_on_view(self.core, user, view, action, trigger)
        )

    def _live_view(self, user: SimSlackUser, view_id: str, forge: bool) -> SimView:
        """A view the user can act on: theirs, and for modals the one on top of their stack."""
        view = self.core.views.views.get(view_id)
        if view is None:
            raise SimUsageError(f"view {view_id} is not open")
        if forge:
            return view
        if view.user_id != user.id:
            raise SimUsageError(f"view {view_id} belongs to {view.user_id}, not {user.id}")
        top = self.core.views.top(user.id)
        if view.type == "modal" and (top is None or top.id != view.id):
            raise SimUsageError(f"view {view_id} is not the modal on top of {user.id}'s stack")
        return view

    async def submit_view(
        self,
        user_id: str,
        view_id: str,
        values: dict[str, dict[str, Any]] | None = None,
        *,
        forge: bool = False,
    ) -> Delivery:
        """The user presses Submit. `values`: block_id -> action_id -> state dict or a shorthand value
        (a string for text inputs, an option value for selects, a list for multi-selects).

        Slack's client refuses to submit with a required input empty; so does this, unless `forge`.
        Afterwards the app's `response_action` (or none) is applied to the modal stack.
        """
        user = self.user(user_id)
        view = self._live_view(user, view_id, forge)
        if view.submit is None and not forge:
            raise SimUsageError(f"view {view_id} has no submit button")
        state = self._submitted_state(view, values or {}, forge)
        view = replace(view, state_values=state, errors=None)
        self.core.views.set(view)
        trigger = self.core.views.issue_trigger(user.id, from_view=view.id)
        delivery = await self.deliver(
            DeliveryKind.INTERACTIVE, payloads.view_submission(self.core, user, view, trigger)
        )
        apply_submission_answer(self.core, view, delivery)
        return delivery

    def _submitted_state(self, view: SimView, values: dict[str, dict[str, Any]], forge: bool) -> JSON:
        inputs = inputs_of(view)
        unknown = [f"{b}/{a}" for b, acts in values.items() for a in acts if a not in inputs.get(b, {})]
        if unknown and not forge:
            raise SimUsageError(f"view {view.id} has no inputs {unknown}; it has {_describe(inputs)}")
        optional = {b.get("block_id"): bool(b.get("optional")) for b in view.blocks}
        state: JSON = {}
        problems: list[str] = []
        for bid, elements in inputs.items():
            for aid, element in elements.items():
                if aid in values.get(bid, {}):
                    entry = state_entry(element, values[bid][aid])
                else:
                    entry = view.state_values.get(bid, {}).get(aid) or initial_entry(element)
                state.setdefault(bid, {})[aid] = entry
                if is_empty(entry) and not optional.get(bid):
                    problems.append(f"{bid}/{aid} is required")
                problems += client_side_problems(element, entry)
        if problems and not forge:
            raise SimUsageError(f"Slack would not let the user submit: {problems}")
        return state

    async def close_view(self, user_id: str, view_id: str, *, all_views: bool = False) -> Delivery | None:
        """The user presses Close (or the X, `all_views=True`); `view_closed` only if notify_on_close."""
        user = self.user(user_id)
        view = self._live_view(user, view_id, False)
        if all_views:
            self.core.views.clear(user.id)
        else:
            self.core.views.pop(user.id)
        if not view.notify_on_close:
            return None
        return await self.deliver(
            DeliveryKind.INTERACTIVE, payloads.view_closed(self.core, user, view, is_cleared=all_views)
        )


@dataclass(frozen=True)
class _Press:
    action_id: str
    block_id: str | None
    value: str | None
    selected: Any
    forge: bool
    stale: bool


def _now(ws: Workspace, message: SimMessage) -> SimMessage:
    if message.ephemeral_to is not None:
        current = ws.find_ephemeral(message.channel, message.ts)
    else:
        current = ws.find(message.channel, message.ts)
    if current is None:
        raise SimUsageError(f"message {message.ts} in {message.channel} no longer exists")
    return current


def _pressable(blocks: list[JSON], press: _Press, where: str) -> tuple[str, JSON]:
    found = find_element(blocks, press.action_id, press.block_id)
    if found is None:
        raise SimUsageError(f"{where} has no element {press.action_id!r}")
    if not _dispatches(blocks, found[0]):
        raise SimUsageError(
            f"{press.action_id!r} sits in an input block without dispatch_action: no block_actions"
        )
    return found


def _action(core: SimCore, element: JSON, block_id: str, press: _Press) -> JSON:
    ts = payloads.action_ts(core)
    return action_payload(
        element, block_id, ts, value=press.value, selected=press.selected, forge=press.forge
    )


def _message_state(blocks: list[JSON], clicked_block: str, action: JSON) -> JSON:
    """state.values of a message: every stateful element, with the one just used set to its choice."""
    state: JSON = {}
    for block in blocks:
        for element in block_elements(block):
            if element.get("type") in _STATELESS:
                continue
            entry = initial_entry(element)
            if block.get("block_id") == clicked_block and element.get("action_id") == action["action_id"]:
                entry = {k: v for k, v in action.items() if k not in ("action_id", "block_id", "action_ts")}
            state.setdefault(block["block_id"], {})[element["action_id"]] = entry
    return state


def _dispatches(blocks: list[JSON], block_id: str) -> bool:
    """Elements of input blocks only send block_actions when the block sets dispatch_action."""
    block = next(b for b in blocks if b.get("block_id") == block_id)
    return block.get("type") != "input" or bool(block.get("dispatch_action"))


def _describe(inputs: dict[str, dict[str, JSON]]) -> list[str]:
    return [f"{b}/{a}" for b, acts in inputs.items() for a in acts]
