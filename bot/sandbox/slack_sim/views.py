"""Modal stacks, Home tabs and trigger ids (single use, about 3 seconds of life)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.sandbox.slack_sim.config import TRIGGER_TTL_SECONDS, SimConfig
from bot.sandbox.slack_sim.entities import JSON, SimView
from bot.sandbox.slack_sim.ids import IdMaker
from bot.sandbox.slack_sim.validation import block_elements, with_ids

_TRIGGER_SHAPE = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")
STACK_MAX = 3


class TriggerError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Grant:
    user_id: str
    issued_at: datetime
    issued_mono: float
    from_view: str | None
    used: bool = False


class ViewRegistry:
    def __init__(self, config: SimConfig, clock: Clock, ids: IdMaker) -> None:
        self._config = config
        self._clock = clock
        self._ids = ids
        self._grants: dict[str, _Grant] = {}
        self.views: dict[str, SimView] = {}
        self.stacks: dict[str, list[str]] = {}
        self.homes: dict[str, str] = {}

    # --- triggers -----------------------------------------------------------------------------

    def issue_trigger(self, user_id: str, from_view: str | None = None) -> str:
        trigger = self._ids.trigger()
        self._grants[trigger] = _Grant(user_id, self._clock.now(), time.monotonic(), from_view)
        return trigger

    def exchange(self, trigger_id: Any) -> _Grant:
        """Validate a trigger for views.open/push; expired on either the simulated or the wall clock."""
        if not isinstance(trigger_id, str) or not _TRIGGER_SHAPE.match(trigger_id):
            raise TriggerError("invalid_trigger_id")
        grant = self._grants.get(trigger_id)
        if grant is None:
            raise TriggerError("invalid_trigger_id")
        if grant.used:
            raise TriggerError("exchanged_trigger_id")
        sim_age = (self._clock.now() - grant.issued_at).total_seconds()
        if sim_age > TRIGGER_TTL_SECONDS or time.monotonic() - grant.issued_mono > TRIGGER_TTL_SECONDS:
            raise TriggerError("expired_trigger_id")
        return grant

    @staticmethod
    def consume(grant: _Grant) -> None:
        grant.used = True

    # --- views --------------------------------------------------------------------------------

    def build(
        self,
        user_id: str,
        payload: JSON,
        *,
        view_id: str | None = None,
        root: str | None = None,
        previous: str | None = None,
    ) -> SimView:
        view_id = view_id or self._ids.view()
        return SimView(
            id=view_id,
            user_id=user_id,
            team_id=self._config.team_id,
            app_id=self._config.app_id,
            bot_id=self._config.bot_id,
            type=str(payload["type"]),
            blocks=with_ids(payload.get("blocks") or [], self._ids.block),
            hash=self._ids.hash(),
            root_view_id=root or view_id,
            previous_view_id=previous,
            title=payload.get("title"),
            submit=payload.get("submit"),
            close=payload.get("close"),
            callback_id=payload.get("callback_id") or "",
            private_metadata=payload.get("private_metadata") or "",
            external_id=payload.get("external_id") or "",
            clear_on_close=bool(payload.get("clear_on_close")),
            notify_on_close=bool(payload.get("notify_on_close")),
        )

    def external_id_taken(self, external_id: str, except_view: str | None = None) -> bool:
        return bool(external_id) and any(
            v.external_id == external_id and v.id != except_view for v in self.views.values()
        )

    def open_root(self, view: SimView) -> None:
        for old in self.stacks.get(view.user_id, []):
            self.views.pop(old, None)
        self.views[view.id] = view
        self.stacks[view.user_id] = [view.id]

    def push(self, view: SimView) -> None:
        self.views[view.id] = view
        self.stacks.setdefault(view.user_id, []).append(view.id)

    def stack(self, user_id: str) -> list[SimView]:
        return [self.views[v] for v in self.stacks.get(user_id, [])]

    def top(self, user_id: str) -> SimView | None:
        stack = self.stacks.get(user_id) or []
        return self.views[stack[-1]] if stack else None

    def find(self, view_id: str | None = None, external_id: str | None = None) -> SimView | None:
        if view_id:
            return self.views.get(view_id)
        return next((v for v in self.views.values() if external_id and v.external_id == external_id), None)

    def update(self, current: SimView, payload: JSON) -> SimView:
        """Replace a view's content in place: same id and place in the stack, a new hash."""
        fresh = self.build(
            current.user_id,
            payload,
            view_id=current.id,
            root=current.root_view_id,
            previous=current.previous_view_id,
        )
        fresh = replace(fresh, state_values=_surviving_state(current.state_values, fresh.blocks))
        self.views[current.id] = fresh
        return fresh

    def set(self, view: SimView) -> None:
        self.views[view.id] = view

    def pop(self, user_id: str) -> SimView | None:
        stack = self.stacks.get(user_id) or []
        if not stack:
            return None
        return self.views.pop(stack.pop())

    def clear(self, user_id: str) -> list[SimView]:
        closed = [self.views.pop(v) for v in self.stacks.pop(user_id, [])]
        return closed

    def publish_home(self, user_id: str, payload: JSON) -> SimView:
        existing = self.homes.get(user_id)
        view = self.build(user_id, payload, view_id=existing)
        self.views[view.id] = view
        self.homes[user_id] = view.id
        return view

    def home(self, user_id: str) -> SimView | None:
        view_id = self.homes.get(user_id)
        return self.views.get(view_id) if view_id else None


def _surviving_state(values: JSON, blocks: list[JSON]) -> JSON:
    """Input values Slack keeps across views.update: those whose block and action ids still exist."""
    kept: JSON = {}
    for block in blocks:
        block_id = block.get("block_id")
        if block_id not in values:
            continue
        for el in block_elements(block):
            action_id = el.get("action_id")
            if action_id in values[block_id]:
                kept.setdefault(block_id, {})[action_id] = values[block_id][action_id]
    return kept
