"""Reveal: our overhead on the Reveal click, and a crowd revealing at once against a throttling Graph.

    python bench/reveal.py [--users 20] [--latency 0.05] [--crowd 200] [--rate 20] [--burst 1] [--check]

keydesk runs for real (HTTP mode, SQLite in a temporary directory) against the Slack and Graph
simulators on 127.0.0.1, all in this process. The people, their requests, their managers'
confirmations and the approvals are set up through the services first (not measured); then:

(a) Overhead. Graph answers every call after a fixed injected latency L. Each of `--users` people
    clicks Reveal in turn; we time from the click (just before the signed request is sent) to the
    `views.update` that shows the pass (the simulator's timestamp of that call). The Graph calls made
    on the way are counted, so the injected part is n x L; our overhead is the rest. Reported: median
    and p95 of total, injected and overhead, and the ratio total / injected.
    Target: median overhead <= 150 ms.

(b) Throttled crowd. `--crowd` people click Reveal at the same moment; Graph admits TAP creations at
    `--rate` a second (token bucket, `--burst` tokens) and answers the rest 429 with Retry-After (the
    time until the next token). Every person must end with exactly one live pass, shown to them; none
    lost. The throttle's lower bound is (crowd - burst) / rate seconds; target: total <= 1.2x of it.

`--check` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.tap_request import RequestState
from bot.sandbox.company import DOMAIN, Company, seed_company
from bot.sandbox.graph_sim.throttle import Throttle
from bot.sandbox.slack_sim import SimMessage
from bot.sandbox.stack import Stack, open_stack
from bot.services import approvals, manager, onboarding
from bot.slack.ids import Action
from bot.store import tap_repo

TAP_COLLECTION = r"/authentication/temporaryAccessPassMethods$"
OVERHEAD_TARGET_MS = 150.0
CROWD_TARGET = 1.2


@dataclass
class Person:
    slack_id: str
    entra_id: str


def _has_pass(call: Any) -> bool:
    if call.method != "views.update" or not call.ok:
        return False
    view = call.params.get("view")
    if isinstance(view, str):
        view = json.loads(view)
    return any(block.get("block_id") == "pass" for block in (view or {}).get("blocks", []))


async def _approved_people(stack: Stack, company: Company, count: int, prefix: str) -> list[Person]:
    """`count` new hires with an approved request each (services, not timed; a few at a time)."""
    rt = stack.keydesk.rt
    people: list[Person] = []
    for n in range(count):
        slack_id, email = f"U0{prefix}{n:04d}", f"{prefix.lower()}{n}@{DOMAIN}"
        user = stack.graph.tenant.add_user(
            f"{prefix} {n}", email, department="Engineering", manager_id=company.grace.entra_id
        )
        stack.slack.add_user(slack_id, f"{prefix.lower()}{n}", real_name=f"{prefix} {n}", email=email)
        people.append(Person(slack_id, user.id))

    async def prepare(person: Person) -> None:
        outcome = await onboarding.request_pass(rt, person.slack_id)
        assert outcome.request_id and not outcome.refused, outcome
        await manager.answer(rt, outcome.request_id, company.grace.slack_id, expected=True)
        decision = await approvals.approve(
            rt, outcome.request_id, company.sam.slack_id, "in_person", "", rt.clock.now()
        )
        assert decision.ok, decision.message

    for start in range(0, count, 10):
        await asyncio.gather(*(prepare(p) for p in people[start : start + 10]))
    return people


def _reveal_dm(stack: Stack, person: Person) -> SimMessage:
    for message in reversed(stack.slack.dm_messages(person.slack_id)):
        if message.is_bot and Action.TAP_REVEAL.value in json.dumps(message.blocks):
            return message
    raise AssertionError(f"no Reveal button in {person.slack_id}'s DM")


async def _wait_pass(stack: Stack, person: Person, since: int, timeout: float) -> tuple[Any, int]:
    """The views.update that showed `person` their pass (searching calls from index `since`), and how
    many requests Graph had recorded when we saw it (follow-up work comes after the pass is shown)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while loop.time() < give_up:
        mine = _views_of(stack, person)
        for call in stack.slack.core.calls[since:]:
            if _has_pass(call) and call.params.get("view_id") in mine:
                return call, len(stack.graph.requests)
        await asyncio.sleep(0.001)
    raise AssertionError(f"{person.slack_id} never saw a pass")


def _views_of(stack: Stack, person: Person) -> set[str]:
    return {v.id for v in stack.slack.core.views.views.values() if v.user_id == person.slack_id}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def overhead(stack: Stack, company: Company, users: int, latency: float) -> dict[str, float]:
    people = await _approved_people(stack, company, users, "OVH")
    stack.graph.set_latency(latency)
    totals, injected, overheads = [], [], []
    try:
        for person in people:
            dm = _reveal_dm(stack, person)
            since_calls, since_graph = len(stack.slack.core.calls), len(stack.graph.requests)
            clicked = datetime.now(UTC)
            await stack.slack.click(person.slack_id, Action.TAP_REVEAL.value, message=dm)
            shown, graph_seen = await _wait_pass(stack, person, since_calls, timeout=10)
            graph_calls = graph_seen - since_graph
            total = (shown.at - clicked).total_seconds()
            totals.append(total)
            injected.append(graph_calls * latency)
            overheads.append(total - graph_calls * latency)
            await asyncio.sleep(
                3 * latency + 0.05
            )  # let the follow-up work (notices, card) finish off the clock
    finally:
        stack.graph.set_latency(0.0)
    return {
        "users": users,
        "latency_ms": latency * 1000,
        "graph_calls_per_reveal": injected[0] / latency if latency else 0.0,
        "total_median_ms": statistics.median(totals) * 1000,
        "total_p95_ms": _pct(totals, 0.95) * 1000,
        "injected_median_ms": statistics.median(injected) * 1000,
        "overhead_median_ms": statistics.median(overheads) * 1000,
        "overhead_p95_ms": _pct(overheads, 0.95) * 1000,
        "ratio_total_to_injected": statistics.median(totals) / statistics.median(injected)
        if latency
        else 0.0,
    }


async def crowd(stack: Stack, company: Company, count: int, rate: float, burst: int) -> dict[str, Any]:
    people = await _approved_people(stack, company, count, "CRD")
    dms = {p.slack_id: _reveal_dm(stack, p) for p in people}
    throttle = Throttle(rate=rate, method="POST", path=TAP_COLLECTION, burst=burst)
    stack.graph.throttle = throttle
    since_calls, since_graph = len(stack.slack.core.calls), len(stack.graph.requests)
    try:
        started = time.monotonic()
        clicked = datetime.now(UTC)
        await asyncio.gather(
            *(stack.slack.click(p.slack_id, Action.TAP_REVEAL.value, message=dms[p.slack_id]) for p in people)
        )
        shown = await asyncio.gather(
            *(_wait_pass(stack, p, since_calls, timeout=max(60.0, 5 * count / rate)) for p in people)
        )
        total = (max(call.at for call, _ in shown) - clicked).total_seconds()
        wall = time.monotonic() - started
    finally:
        stack.graph.throttle = None
    await asyncio.sleep(0.5)
    created = [
        r
        for r in stack.graph.requests[since_graph:]
        if r.method == "POST" and r.route and "temporaryAccessPass" in r.route
    ]
    admitted = [r for r in created if 200 <= r.status < 300]
    live = {p.slack_id: [t for t in stack.graph.tenant.taps_of(p.entra_id) if not t.deleted] for p in people}
    async with stack.keydesk.rt.db.read() as session:
        states = [(await tap_repo.open_for_target(session, p.slack_id)) for p in people]
    issued = sum(1 for s in states if s is not None and s.state == RequestState.ISSUED)
    bound = throttle.lower_bound(count)
    return {
        "crowd": count,
        "rate_per_s": rate,
        "burst": burst,
        "lower_bound_s": bound,
        "total_s": total,
        "wall_s": wall,
        "ratio": total / bound if bound else 0.0,
        "tap_posts": len(created),
        "tap_posts_admitted": len(admitted),
        "throttled_429": throttle.refused,
        "people_with_one_live_pass": sum(1 for taps in live.values() if len(taps) == 1),
        "requests_issued": issued,
    }


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        stack = await open_stack(
            f"sqlite+aiosqlite:///{tmp}/bench.db",
            max_approvals_per_approver_per_hour=1_000_000,
            max_passes_per_hour=1_000_000,
            log_level="WARNING",
        )
        try:
            company = seed_company(stack.slack, stack.graph)
            await stack.start_app()
            a = await overhead(stack, company, args.users, args.latency)
            b = await crowd(stack, company, args.crowd, args.rate, args.burst)
        finally:
            await stack.close()
    print("(a) Reveal click -> pass shown, Graph latency injected per call")
    for key, value in a.items():
        print(f"    {key:28} {value:10.2f}" if isinstance(value, float) else f"    {key:28} {value:>10}")
    print("(b) crowd revealing at once against a throttling Graph")
    for key, value in b.items():
        print(f"    {key:28} {value:10.2f}" if isinstance(value, float) else f"    {key:28} {value:>10}")
    problems = []
    if a["overhead_median_ms"] > OVERHEAD_TARGET_MS:
        problems.append(f"median overhead {a['overhead_median_ms']:.0f} ms > {OVERHEAD_TARGET_MS:.0f} ms")
    if b["people_with_one_live_pass"] != b["crowd"] or b["requests_issued"] != b["crowd"]:
        problems.append("not every person ended with exactly one pass shown")
    if b["tap_posts_admitted"] != b["crowd"]:
        problems.append(f"{b['tap_posts_admitted']} passes created for {b['crowd']} people")
    if b["ratio"] > CROWD_TARGET:
        problems.append(f"crowd took {b['ratio']:.2f}x the throttle's lower bound (target {CROWD_TARGET}x)")
    for problem in problems:
        print(f"MISSED: {problem}")
    if not problems:
        print("all targets met")
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--crowd", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--check", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
