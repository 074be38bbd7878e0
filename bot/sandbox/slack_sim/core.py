"""The simulator's shared state: identity, clock, workspace, views, faults and everything observed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.sandbox.slack_sim.config import SimConfig
from bot.sandbox.slack_sim.entities import ApiCall
from bot.sandbox.slack_sim.faults import FaultBook
from bot.sandbox.slack_sim.ids import IdMaker
from bot.sandbox.slack_sim.views import ViewRegistry
from bot.sandbox.slack_sim.workspace import Workspace


@dataclass
class ResponseUrl:
    """Where an interaction's `response_url` points back to: a channel, a user, maybe a message."""

    channel_id: str
    user_id: str
    message_ts: str | None
    is_ephemeral: bool
    issued_at: datetime
    uses: int = 0


class SimCore:
    def __init__(self, config: SimConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.ids = IdMaker(clock)
        self.workspace = Workspace(config, clock, self.ids)
        self.views = ViewRegistry(config, clock, self.ids)
        self.faults = FaultBook()
        self.calls: list[ApiCall] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        # Everything the app sent towards Slack, serialised, for canary scans.
        self.outbound: list[str] = []
        # Things Slack accepts but advises against (e.g. blocks without fallback text).
        self.warnings: list[str] = []
        # Answers real Slack would reject, visibly to the user (e.g. errors for an unknown block).
        self.protocol_errors: list[str] = []
        self.base_url = ""
        self.ws_url = ""
        self.ws_tickets: set[str] = set()
        self.calls_changed = asyncio.Condition()

    def now_epoch(self) -> int:
        return int(self.clock.now().timestamp())

    def record_outbound(self, value: Any) -> None:
        if value is None or value == "":
            return
        self.outbound.append(value if isinstance(value, str) else json.dumps(value, sort_keys=True))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def protocol_error(self, message: str) -> None:
        self.protocol_errors.append(message)

    def issue_response_url(
        self, channel_id: str, user_id: str, message_ts: str | None, *, is_ephemeral: bool = False
    ) -> str:
        key = self.ids.secret()
        self.response_urls[key] = ResponseUrl(channel_id, user_id, message_ts, is_ephemeral, self.clock.now())
        return f"{self.base_url}hooks/{key}"
