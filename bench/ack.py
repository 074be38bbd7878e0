"""Ack latency: keydesk against a trivial Bolt app on the same machine, in the same run.

    python bench/ack.py [--requests 600] [--concurrency 20] [--check]

Both apps receive the same mix of signed DM events and button clicks over HTTP, in alternating
rounds so that machine noise hits both alike. keydesk runs for real (SQLite, event dedup, its
listeners and their follow-up work against the Slack and Graph simulators); the trivial app only
acknowledges. The figure that matters is the ratio of the p99s (target: keydesk within 1.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import configure_logging
from bot.sandbox.company import seed_company
from bot.sandbox.stack import SIGNING_SECRET, open_stack

TEAM, APP = "T0KEYDESK", "A0KEYDESK"


@dataclass
class Sample:
    name: str
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def signed(body: str, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}"}


def dm_event(n: int, user: str) -> tuple[str, str]:
    body = {
        "token": "t",
        "team_id": TEAM,
        "api_app_id": APP,
        "type": "event_callback",
        "event_id": f"EvBench{time.time_ns()}{n}",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel_type": "im",
            "user": user,
            "text": "hello",
            "ts": f"{time.time():.6f}",
            "channel": f"D{user}",
        },
    }
    return json.dumps(body), "application/json"


def button_click(n: int, user: str) -> tuple[str, str]:
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "api_app_id": APP,
        "user": {"id": user, "team_id": TEAM},
        "trigger_id": f"1.{n}.bench",
        "container": {"type": "view", "view_id": "VHOME"},
        "actions": [
            {
                "action_id": "open_home",
                "block_id": "b",
                "type": "button",
                "value": "x",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


async def drive(
    http: aiohttp.ClientSession, url: str, count: int, concurrency: int, users: list[str], sample: Sample
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def worker() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body, content_type = (dm_event if n % 2 else button_click)(n, users[n % len(users)])
            started = time.perf_counter()
            async with http.post(url, data=body.encode(), headers=signed(body, content_type)) as response:
                await response.read()
                if response.status != 200:
                    sample.errors += 1
            sample.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.elapsed += time.perf_counter() - started


async def trivial_app(api_url: str) -> tuple[web.AppRunner, str]:
    """The framework's floor: Bolt with a listener per request type that only acknowledges."""
    bolt = AsyncApp(
        client=AsyncWebClient(base_url=api_url),
        signing_secret=SIGNING_SECRET,
        authorize=lambda **_: _auth(),
    )

    @bolt.event("message")
    async def on_message() -> None:
        return None

    @bolt.action("open_home")
    async def on_click(ack: Any) -> None:
        await ack()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


async def _auth() -> AuthorizeResult:
    return AuthorizeResult(
        enterprise_id=None,
        team_id=TEAM,
        bot_user_id="U0KEYBOT",
        bot_id="B0KEYBOT",
        bot_token="xoxb-sim-token",
    )


async def main(requests: int, concurrency: int, rounds: int) -> tuple[Sample, Sample]:
    configure_logging("ERROR", "console")
    with tempfile.TemporaryDirectory() as tmp:
        stack = await open_stack(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        company = seed_company(stack.slack, stack.graph)
        await stack.start_app()
        users = [company.ada.slack_id, company.morgan.slack_id, company.grace.slack_id]
        runner, trivial_url = await trivial_app(stack.settings.slack_api_url)
        keydesk_url = f"{stack.url}/slack/events"
        base, ours = Sample("trivial Bolt app"), Sample("keydesk")
        try:
            async with aiohttp.ClientSession() as http:
                await drive(http, trivial_url, 40, concurrency, users, Sample("warm-up"))
                await drive(http, keydesk_url, 40, concurrency, users, Sample("warm-up"))
                per_round = max(1, requests // rounds)
                for _ in range(rounds):
                    await drive(http, trivial_url, per_round, concurrency, users, base)
                    await drive(http, keydesk_url, per_round, concurrency, users, ours)
                    await asyncio.sleep(0.5)  # let keydesk's after-ack work drain between rounds
        finally:
            await runner.cleanup()
            await stack.close()
    return base, ours


def report(base: Sample, ours: Sample) -> float:
    print(f"{'app':<18}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}")
    for s in (base, ours):
        print(
            f"{s.name:<18}{len(s.latencies):>9}{s.pct(0.5):>9.2f}{s.pct(0.99):>9.2f}{s.throughput:>9.0f}{s.errors:>8}"
        )
    ratio = ours.pct(0.99) / base.pct(0.99)
    print(
        f"p99 ratio keydesk / trivial: {ratio:.2f} (target <= 1.5); "
        f"p50 ratio {ours.pct(0.5) / base.pct(0.5):.2f}; mean keydesk {statistics.mean(ours.latencies) * 1000:.2f} ms"
    )
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--check", action="store_true", help="exit 1 if the p99 ratio misses the target")
    args = parser.parse_args()
    baseline, keydesk = asyncio.run(main(args.requests, args.concurrency, args.rounds))
    ratio = report(baseline, keydesk)
    sys.exit(1 if args.check and (ratio > 1.5 or keydesk.errors) else 0)
