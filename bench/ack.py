"""Ack latency: keydesk against a trivial Bolt app on the same machine, in the same run.

    python bench/ack.py [--rate 40] [--seconds 5] [--rounds 6] [--check]

What is measured is what Slack's 3-second rule is about: the time from the moment a signed request
is due to be sent until its HTTP response (the ack) has been read.

Fairness (both apps get exactly the same treatment):
- Open loop at a fixed offered rate: requests are sent on a fixed schedule whatever the answers, as
  Slack does (it does not wait for one user's ack before delivering the next user's event). A closed
  loop would let the trivial app, which does no work, run at thousands of requests a second while
  keydesk's follow-up work (Graph, Slack, database) piles up without bound; that compares
  throughputs, not acks. Latency counts from the scheduled send time, so a late sender cannot hide
  a slow server (no coordinated omission). `--rate` should be one keydesk sustains with its
  follow-up work done; the report shows it did (achieved rate, follow-up calls, drain time).
- One process per party: the load generator here, keydesk in its own process, the trivial app in
  its own, and the Slack and Graph simulators in a fourth (in production they are remote; sharing
  keydesk's event loop would bill their work to keydesk's acks). Nothing else shares a loop.
- Same mix for both: alternating signed DM events (`event_callback`, unique `event_id`) and button
  clicks (`block_actions`, `open_home`), for three seeded users.
- A warm-up round each (discarded), then alternating rounds (trivial, keydesk, ...) so machine
  noise hits both alike; after each keydesk round we wait until its follow-up work has drained, so
  a round never starts with the previous one's backlog.

keydesk runs for real: HTTP mode, SQLite, event dedup through the database, its listeners and their
follow-up work against the simulators. The trivial app has a listener per request type that only
acknowledges. Target: keydesk's p99 within 1.5x of the trivial app's (`--check` exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

TEAM, APP = "T0KEYDESK", "A0KEYDESK"
TARGET = 1.5
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Sample:
    name: str
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    drains: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)

    def pct(self, q: float) -> float:
        return _pct(self.latencies, q)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def _pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def signed(secret: str, body: str, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
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


# --- the driver (this process) ------------------------------------------------------------------


async def drive(
    http: aiohttp.ClientSession,
    target: Target,
    count: int,
    rate: float,
    users: list[str],
    sample: Sample,
) -> None:
    """Open loop: request n is due at start + n/rate, sent then whatever earlier answers did."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(n: int) -> None:
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        body, content_type = (dm_event if n % 2 else button_click)(n, users[n % len(users)])
        headers = signed(target.secret, body, content_type)
        try:
            async with http.post(target.url, data=body.encode(), headers=headers) as response:
                await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        sample.latencies.append(loop.time() - due)
        sample.by_kind.setdefault("event" if n % 2 else "click", []).append(loop.time() - due)
        sample.errors += 0 if ok else 1

    began = loop.time()
    await asyncio.gather(*(one(n) for n in range(count)))
    sample.elapsed += loop.time() - began


@dataclass
class Target:
    """A child process serving one party, talked to over its stdin/stdout, one JSON line each way."""

    proc: subprocess.Popen[str]
    info: dict[str, Any]

    @classmethod
    def spawn(cls, role: str, config: dict[str, Any]) -> Target:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            },
        )
        target = cls(proc, {})
        target.send(config)
        target.info = target.receive()
        return target

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def secret(self) -> str:
        return str(self.info["secret"])

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench child exited ({self.proc.wait()})")
        return dict(json.loads(line))

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        return await asyncio.to_thread(self.receive)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def main(rate: float, seconds: float, rounds: int) -> tuple[Sample, Sample, dict[str, int]]:
    per_round = max(2, int(rate * seconds))
    with tempfile.TemporaryDirectory() as tmp:
        sims = Target.spawn("sims", {"database_url": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"})
        keydesk = trivial = None
        try:
            keydesk = Target.spawn("keydesk", sims.info)
            trivial = Target.spawn("trivial", sims.info)
            users = list(sims.info["users"])
            base, ours = Sample("trivial Bolt app"), Sample("keydesk")
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                await drive(http, trivial, per_round // 2, rate, users, Sample("warm-up"))
                await drive(http, keydesk, per_round // 2, rate, users, Sample("warm-up"))
                await keydesk.ask({"drain": True})
                before = await sims.ask({"calls": True})
                for _ in range(rounds):
                    await drive(http, trivial, per_round, rate, users, base)
                    await drive(http, keydesk, per_round, rate, users, ours)
                    ours.drains.append(float((await keydesk.ask({"drain": True}))["seconds"]))
                after = await sims.ask({"calls": True})
            follow_up = {k: int(after[k]) - int(before.get(k, 0)) for k in after}
        finally:
            for child in (trivial, keydesk, sims):
                if child is not None:
                    child.close()
    return base, ours, follow_up


def report(base: Sample, ours: Sample, rate: float, follow_up: dict[str, int]) -> float:
    print(f"offered rate {rate:g} req/s (half DM events, half button clicks), open loop")
    print(f"{'app':<18}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>8}{'errors':>8}")
    for s in (base, ours):
        print(
            f"{s.name:<18}{len(s.latencies):>9}{s.pct(0.5):>9.2f}{s.pct(0.99):>9.2f}"
            f"{max(s.latencies) * 1000:>9.2f}{s.throughput:>8.1f}{s.errors:>8}"
        )
    for s in (base, ours):
        kinds = ", ".join(
            f"{k} p50 {_pct(v, 0.5):.1f} p99 {_pct(v, 0.99):.1f}" for k, v in sorted(s.by_kind.items())
        )
        print(f"  {s.name}: {kinds} (ms)")
    ratio = ours.pct(0.99) / base.pct(0.99)
    print(
        "keydesk follow-up work done in the simulators: "
        + ", ".join(f"{v} {k}" for k, v in sorted(follow_up.items()))
        + f"; drained {max(ours.drains):.2f} s after each round at worst"
    )
    print(
        f"p99 ratio keydesk / trivial: {ratio:.2f} (target <= {TARGET}); "
        f"p50 ratio {ours.pct(0.5) / base.pct(0.5):.2f}; mean keydesk {statistics.mean(ours.latencies) * 1000:.2f} ms"
    )
    return ratio


# --- the children -------------------------------------------------------------------------------


async def _lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve_sims(config: dict[str, Any], commands: asyncio.StreamReader) -> None:
    from bot.sandbox.company import seed_company
    from bot.sandbox.stack import SIGNING_SECRET, open_stack

    stack = await open_stack(config["database_url"])
    company = seed_company(stack.slack, stack.graph)
    s = stack.settings
    _say(
        {
            "database_url": s.database_url,
            "slack_api_url": s.slack_api_url,
            "graph_url": s.graph_url,
            "bot_token": stack.slack.config.bot_token,
            "secret": SIGNING_SECRET,
            "users": [company.ada.slack_id, company.morgan.slack_id, company.grace.slack_id],
            "url": s.slack_api_url,
        }
    )
    while line := await commands.readline():
        if json.loads(line).get("calls"):
            counts: dict[str, int] = {}
            for call in stack.slack.calls:
                counts[call.method] = counts.get(call.method, 0) + 1
            _say({k: v for k, v in counts.items() if k in ("chat.postMessage", "views.publish")})
    await stack.close()


async def serve_keydesk(config: dict[str, Any], commands: asyncio.StreamReader) -> None:
    from bot.config import Settings
    from bot.sandbox.stack import APPROVERS_GROUP, GRAPH_TOKEN, HELPDESK_CHANNEL
    from bot.server import start

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=config["bot_token"],
        slack_signing_secret=config["secret"],
        slack_api_url=config["slack_api_url"],
        graph_url=config["graph_url"],
        graph_token=GRAPH_TOKEN,
        database_url=config["database_url"],
        helpdesk_channel=HELPDESK_CHANNEL,
        approver_group_id=APPROVERS_GROUP,
        http_host="127.0.0.1",
        http_port=0,
    )
    running = await start(settings)
    _say({"url": f"http://127.0.0.1:{running.port}/slack/events", "secret": config["secret"]})
    while line := await commands.readline():
        if json.loads(line).get("drain"):
            _say({"seconds": await _drain()})
    await running.stop()


async def _drain() -> float:
    """Wait until no listener is still doing follow-up work (Bolt runs each as its own task)."""
    began = time.perf_counter()
    quiet = 0
    while quiet < 5 and time.perf_counter() - began < 120:
        quiet = 0 if any(_is_listener(t) for t in asyncio.all_tasks()) else quiet + 1
        await asyncio.sleep(0.02)
    return time.perf_counter() - began


def _is_listener(task: asyncio.Task[Any]) -> bool:
    return "run_ack_function" in getattr(task.get_coro(), "__qualname__", "")


async def serve_trivial(config: dict[str, Any], commands: asyncio.StreamReader) -> None:
    """The framework's floor: Bolt with a listener per request type that only acknowledges."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.authorization import AuthorizeResult
    from slack_sdk.web.async_client import AsyncWebClient

    async def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id=TEAM,
            bot_user_id="U0KEYBOT",
            bot_id="B0KEYBOT",
            bot_token=config["bot_token"],
        )

    bolt = AsyncApp(
        client=AsyncWebClient(base_url=config["slack_api_url"]),
        signing_secret=config["secret"],
        authorize=authorize,
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
    _say({"url": f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", "secret": config["secret"]})
    while await commands.readline():
        pass
    await runner.cleanup()


async def child(role: str) -> None:
    from bot.logs import configure_logging

    configure_logging("ERROR", "console")
    commands = await _lines()
    config = json.loads(await commands.readline())
    serve = {"sims": serve_sims, "keydesk": serve_keydesk, "trivial": serve_trivial}[role]
    profile_to = os.environ.get("ACK_BENCH_PROFILE") if role == "keydesk" else None
    if not profile_to:
        await serve(config, commands)
        return
    import cProfile  # the keydesk process only: ACK_BENCH_PROFILE=out.prof python bench/ack.py

    with cProfile.Profile() as profiler:
        await serve(config, commands)
    profiler.dump_stats(profile_to)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=40.0, help="offered requests per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--check", action="store_true", help="exit 1 if the p99 ratio misses the target")
    parser.add_argument("--serve", choices=("sims", "keydesk", "trivial"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(child(args.serve))
        sys.exit(0)
    baseline, keydesk, follow_up = asyncio.run(main(args.rate, args.seconds, args.rounds))
    ratio = report(baseline, keydesk, args.rate, follow_up)
    sys.exit(1 if args.check and (ratio > TARGET or keydesk.errors or baseline.errors) else 0)
