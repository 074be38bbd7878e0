"""A whole keydesk on one machine: the real app over HTTP, with the Slack and Graph simulators behind it.

Used by `keydesk demo`, the end-to-end tests and the benchmarks, so all three exercise the same wiring.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import Keydesk, build_app
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.sandbox.graph_sim import GraphSimulator
from bot.sandbox.slack_sim import SlackSimulator
from bot.server import Running, start

SIGNING_SECRET = "sandbox-signing-secret"
GRAPH_TOKEN = "sandbox-graph-token"
HELPDESK_CHANNEL = "C0HELPDESK"
APPROVERS_GROUP = "3f2c7c1e-5c2b-4f8e-9d51-0a1b2c3d4e5f"
PRIVILEGED_APPROVERS_GROUP = "8d0e6a4b-2f1c-4b7a-a3e9-5c6d7e8f9a0b"


@dataclass
class Stack:
    slack: SlackSimulator
    graph: GraphSimulator
    settings: Settings
    running: Running | None = None
    scratch: Path | None = None  # the stack's own key files, removed on close

    @property
    def keydesk(self) -> Keydesk:
        assert self.running is not None, "stack not started"
        return self.running.keydesk

    @property
    def url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.port}"

    async def start_app(self, clock: Clock | None = None) -> Keydesk:
        """Start (or restart) keydesk against the running simulators."""
        keydesk = build_app(self.settings, clock=clock or SystemClock())
        self.running = await start(self.settings, keydesk)
        self.slack.connect_bot(f"{self.url}/slack/events")
        return self.running.keydesk

    async def stop_app(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    async def close(self) -> None:
        await self.stop_app()
        await self.slack.stop()
        await self.graph.stop()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


async def open_stack(database_url: str, *, clock: Clock | None = None, **overrides: Any) -> Stack:
    """Start both simulators and build the settings that point keydesk at them (app not started yet)."""
    slack = SlackSimulator(signing_secret=SIGNING_SECRET, clock=clock)
    graph = GraphSimulator(clock=clock, token=GRAPH_TOKEN)
    api_url = await slack.start()
    graph_url = await graph.start()
    values: dict[str, Any] = {
        "slack_bot_token": slack.config.bot_token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": api_url,
        "graph_url": graph_url,
        "graph_token": GRAPH_TOKEN,
        "database_url": database_url,
        "helpdesk_channel": HELPDESK_CHANNEL,
        "approver_group_id": APPROVERS_GROUP,
        "privileged_approver_group_id": PRIVILEGED_APPROVERS_GROUP,
        "http_host": "127.0.0.1",
        "http_port": 0,
        "deadline_poll_seconds": 0.2,
    }
    # The desk signing key and the PIN seal key default to files in the working directory (production
    # keeps them beside the app); a sandbox makes its own, so nothing lands in the caller's folder.
    scratch = None
    if not {"agent_signing_key_file", "pin_seal_key_file"} <= overrides.keys():
        scratch = Path(tempfile.mkdtemp(prefix="keydesk-sandbox-"))
        values["agent_signing_key_file"] = scratch / "agent-link.key"
        values["pin_seal_key_file"] = scratch / "pin-seal.key"
    values.update(overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    return Stack(slack=slack, graph=graph, settings=settings, scratch=scratch)
