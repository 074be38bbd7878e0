"""The shared handles every use case works with, built once by `build_app`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from bot.audit import AuditLog
from bot.clock import Clock
from bot.config import Settings
from bot.deadlines import Deadlines
from bot.directory import Directory
from bot.security_webhook import SecurityWebhook
from bot.slack.messenger import Messenger
from bot.store.db import Database


@dataclass
class SlackIdentity:
    """Who the bot is in Slack, learned from auth.test at startup (or from settings)."""

    team_id: str = ""
    enterprise_id: str | None = None
    bot_user_id: str = ""
    bot_id: str | None = None
    app_id: str | None = None


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    directory: Directory
    slack: Messenger
    audit: AuditLog
    deadlines: Deadlines
    me: SlackIdentity = field(default_factory=SlackIdentity)
    security_webhook: SecurityWebhook | None = None  # KEYDESK_SECURITY_WEBHOOK_URL: alerts leave Slack
    # Work that follows an ack (Graph calls, rendering) runs a few at a time, so a burst of requests
    # queues cheaply instead of starving the event loop that answers Slack's next requests. 4, not
    # more: measured with bench/ack.py, 8 let a burst of 60 req/s push the p99 ack past 300 ms.
    work_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    # When the helpdesk was last told the Entra ID Protection risk check can't run (services/risk.py).
    risk_unavailable_noticed: datetime | None = None

    @asynccontextmanager
    async def after_ack(self) -> AsyncIterator[None]:
        async with self.work_slots:
            yield
