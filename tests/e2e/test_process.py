"""`keydesk run` as a real process: HTTP mode against the simulators, JSON logs, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp

from bot.sandbox.company import seed_company
from bot.sandbox.stack import GRAPH_TOKEN, SIGNING_SECRET, open_stack

from .helpers import eventually, wait_dm


async def test_run_serves_slack_and_stops_cleanly_on_sigterm(tmp_path: Path, database_url: str) -> None:
    stack = await open_stack(database_url)
    seed_company(stack.slack, stack.graph)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AZURE_", "KEYDESK_"))}
    env.update(
        {
            "SLACK_BOT_TOKEN": stack.slack.config.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "KEYDESK_SLACK_API_URL": stack.settings.slack_api_url,
            "KEYDESK_GRAPH_URL": stack.settings.graph_url,
            "KEYDESK_GRAPH_TOKEN": GRAPH_TOKEN,
            "KEYDESK_DATABASE_URL": database_url,
            "KEYDESK_HELPDESK_CHANNEL": "C0HELPDESK",
            "KEYDESK_APPROVER_GROUP_ID": stack.settings.approver_group_id or "",
            "KEYDESK_HTTP_PORT": "0",
            "KEYDESK_LOG_LEVEL": "DEBUG",
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[dict[str, object]] = []

    async def read_logs() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            lines.append(json.loads(raw))  # JSON, because stderr is not a terminal

    reader = asyncio.create_task(read_logs())
    try:
        listening = await eventually(
            lambda: next((entry for entry in lines if entry.get("event") == "keydesk.listening"), None),
            "keydesk to listen",
            timeout=30,
        )
        port = int(str(listening["port"]))
        stack.slack.connect_bot(f"http://127.0.0.1:{port}/slack/events")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as ready:
            assert ready.status == 200
        await stack.slack.send_dm("U0ADA", "hello")
        await wait_dm(stack.slack, "U0ADA", "I'm keydesk", timeout=10)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        await reader
        events = [entry.get("event") for entry in lines]
        assert "keydesk.stopping" in events and "keydesk.stopped" in events
        logged = json.dumps(lines)
        for secret in (stack.slack.config.bot_token, SIGNING_SECRET, GRAPH_TOKEN):
            assert secret not in logged
    finally:
        if process.returncode is None:
            process.kill()
        await stack.close()
