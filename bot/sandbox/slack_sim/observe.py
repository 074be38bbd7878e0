"""Watching what the bot did: API calls, messages, ephemerals, modal stacks, Home tabs, outbound text."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON, ApiCall, SimMessage, SimUsageError, SimView
from bot.sandbox.slack_sim.interactions import find_element
from bot.sandbox.slack_sim.responses import ResponseUrlEndpoint


class ObserverMixin:
    core: SimCore
    _hooks: ResponseUrlEndpoint

    @property
    def calls(self) -> list[ApiCall]:
        return self.core.calls

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[ApiCall]:
        return [c for c in self.core.calls if c.method == method and (c.ok or not ok_only)]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 2.0,
        *,
        since: int = 0,
        include_failed: bool = False,
    ) -> ApiCall:
        """The first call to `method` (from index `since` of `calls`) that succeeded and matches."""

        def match() -> ApiCall | None:
            for call in self.core.calls[since:]:
                if (
                    call.method == method
                    and (include_failed or call.ok)
                    and (predicate is None or predicate(call))
                ):
                    return call
            return None

        cond = self.core.calls_changed
        try:
            async with cond:
                await asyncio.wait_for(cond.wait_for(lambda: match() is not None), timeout)
        except TimeoutError:
            seen = [f"{c.method}{'' if c.ok else '!' + str(c.error)}" for c in self.core.calls[since:]]
            raise AssertionError(f"no matching {method} within {timeout}s; saw {seen}") from None
        found = match()
        assert found is not None
        return found

    def messages(self, channel_id: str) -> list[SimMessage]:
        return self.core.workspace.messages(channel_id)

    def dm_with(self, user_id: str) -> str | None:
        return self.core.workspace.dm_with(user_id)

    def dm_messages(self, user_id: str) -> list[SimMessage]:
        channel = self.dm_with(user_id)
        return self.messages(channel) if channel else []

    def ephemerals(self, channel_id: str | None = None, user_id: str | None = None) -> list[SimMessage]:
        return self.core.workspace.ephemerals(channel_id, user_id)

    def open_views(self, user_id: str) -> list[SimView]:
        return self.core.views.stack(user_id)

    def home_view(self, user_id: str) -> SimView | None:
        return self.core.views.home(user_id)

    def view(self, view_id: str) -> SimView | None:
        return self.core.views.views.get(view_id)

    def all_outbound_text(self) -> str:
        """Every parameter, ack body and response_url post the bot sent, serialised (canary scans)."""
        return "\n".join(self.core.outbound)

    @property
    def warnings(self) -> list[str]:
        return self.core.warnings

    @property
    def protocol_errors(self) -> list[str]:
        return self.core.protocol_errors

    @property
    def response_url_posts(self) -> list[JSON]:
        return list(self._hooks.posts)

    def find_action(self, user_id: str, action_id: str) -> SimMessage | SimView:
        """Where `user_id` can see an element with `action_id`: top modal, Home, then newest messages."""
        views = self.core.views
        for view in (views.top(user_id), views.home(user_id)):
            if view is not None and find_element(view.blocks, action_id):
                return view
        ws = self.core.workspace
        candidates = [m for m in ws.all_messages() if user_id in ws.channels[m.channel].members]
        candidates += ws.ephemerals(user_id=user_id)
        for message in sorted(candidates, key=lambda m: m.ts, reverse=True):
            if find_element(message.blocks, action_id):
                return message
        raise SimUsageError(f"{user_id} sees no element with action_id {action_id!r}")
