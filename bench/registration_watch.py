"""1,000 people in the middle of a guide: the completion watch's load on Graph, and how fast it notices.

    python bench/registration_watch.py [--users 1000] [--minutes 15] [--registrations 150] [--seed 7]
                                       [--database-url postgresql+asyncpg://...]

The real services (registration, deadlines, gateway, messenger, database) run against the Slack and
Graph simulators on ONE simulated clock that moves a second at a time; after each second the due
deadlines are pumped (the pump period is therefore 1 s). Every person has a revealed pass and a wizard;
a fifth of them keep clicking Done now and then (each click brings a look forward); `--registrations`
of them register a key in the "browser" (the Graph simulator) at random times.

Stated in bot/services/registration/__init__.py, checked here in the same run (exit status 1 if either fails):
- budget: at most POLL_BUDGET_PER_MINUTE method-list calls to Graph in any 60 simulated seconds (the
  count includes App Home refreshes after completions, so it is the feature's whole read load);
- bound: every registration noticed within detection_bound(users, pump) seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from bot.app import Keydesk, build_app
from bot.clock import FrozenClock
from bot.domain.tap_request import ManagerStatus, RequestKind, RequestState
from bot.domain.wizard import WizardAction
from bot.logs import configure_logging
from bot.sandbox.stack import Stack, open_stack
from bot.services import registration
from bot.store import tap_repo, wizard_repo
from bot.store.db import Base
from bot.store.migrate import migrate
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard

METHODS_LIST = r"^/users/[^/]+/authentication/methods$"
AAGUID = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
PUMP_SECONDS = 1.0
ACTIVE_SHARE = 0.2
CLICK_EVERY = 90.0  # seconds between an active person's clicks, on average


@dataclass
class Person:
    slack_id: str
    entra_id: str
    request_id: str = ""
    active: bool = False
    next_click: float = 0.0
    registers_at: float | None = None
    registered: datetime | None = None


@dataclass
class Tally:
    per_second: list[int] = field(default_factory=list)
    clicks: int = 0


async def setup(
    args: argparse.Namespace, url: str, clock: FrozenClock
) -> tuple[Stack, Keydesk, list[Person]]:
    stack = await open_stack(url, clock=clock, deadline_poll_seconds=PUMP_SECONDS)
    await migrate(url)
    keydesk = build_app(stack.settings, clock=clock)
    async with keydesk.rt.db.engine.begin() as conn:  # until the migration matches the model
        await conn.run_sync(wizards_table_as_modelled)
    with contextlib.suppress(ValueError):
        registration.register_registration_deadlines(keydesk.rt)
    people = [seed_person(stack, i) for i in range(args.users)]
    async with keydesk.rt.db.session() as session:
        for person in people:
            person.request_id = await add_request(session, stack, person, clock.now())
    slots = asyncio.Semaphore(25)

    async def start(person: Person) -> None:
        async with slots:
            await registration.start_after_reveal(keydesk.rt, person.request_id)

    await asyncio.gather(*(start(p) for p in people))
    return stack, keydesk, people


def wizards_table_as_modelled(sync: Any) -> None:
    table = Base.metadata.tables[Wizard.__tablename__]
    found = inspect(sync)
    if found.has_table(table.name) and {c["name"] for c in found.get_columns(table.name)} != set(
        table.columns.keys()
    ):
        table.drop(sync)
    table.create(sync, checkfirst=True)


def seed_person(stack: Stack, i: int) -> Person:
    email = f"person{i}@bench.example"
    user = stack.graph.tenant.add_user(f"Person {i}", email)
    slack_id = f"U{i:08d}"
    stack.slack.add_user(slack_id, f"person{i}", real_name=f"Person {i}", email=email)
    return Person(slack_id=slack_id, entra_id=user.id)


async def add_request(session: object, stack: Stack, person: Person, now: datetime) -> str:
    tap = stack.graph.tenant.issue_tap(person.entra_id, lifetime=120, usable_once=False)
    request = TapRequest(
        id=str(uuid.uuid4()),
        kind=RequestKind.ONBOARDING.value,
        state=RequestState.ISSUED.value,
        version=3,
        created_at=now,
        decide_by=now + timedelta(hours=4),
        target_slack_id=person.slack_id,
        target_entra_id=person.entra_id,
        requester_slack_id=person.slack_id,
        target_profile={},
        checks=[],
        manager_status=ManagerStatus.NOT_REQUIRED.value,
        reveal_count=1,
        tap_id=tap.id,
        tap_created_at=now,
        tap_expires_at=now + timedelta(minutes=120),
    )
    await tap_repo.add(session, request)  # type: ignore[arg-type]
    return request.id


def plan(people: list[Person], args: argparse.Namespace, rng: random.Random) -> None:
    for person in rng.sample(people, int(len(people) * ACTIVE_SHARE)):
        person.active, person.next_click = True, rng.uniform(0, CLICK_EVERY * 2)
    last = args.minutes * 60.0 - registration.detection_bound(len(people), PUMP_SECONDS) - 10
    window = (min(180.0, last / 2), last)  # after the first looks have spread out, in time to be seen
    for person in rng.sample(people, args.registrations):
        person.registers_at = rng.uniform(*window)


async def click(keydesk: Keydesk, person: Person) -> None:
    async with keydesk.rt.db.read() as session:
        row = await wizard_repo.for_request(session, person.request_id)
    if row is not None and row.live:
        action = WizardAction.DONE if row.step_index + 1 < row.step_count else WizardAction.BACK
        await registration.press(keydesk.rt, person.slack_id, action, f"{row.id}:{row.version}")


class ListCounter:
    """Counts new method-list calls the Graph simulator received, looking only at requests not seen yet."""

    def __init__(self, stack: Stack) -> None:
        self.requests = stack.graph.requests
        self.index = len(self.requests)
        self.pattern = re.compile(METHODS_LIST)

    def new(self) -> int:
        fresh = self.requests[self.index :]
        self.index += len(fresh)
        return sum(1 for r in fresh if r.method == "GET" and self.pattern.search(r.path))


async def run(
    args: argparse.Namespace,
    stack: Stack,
    keydesk: Keydesk,
    people: list[Person],
    clock: FrozenClock,
    rng: random.Random,
) -> Tally:
    tally = Tally()
    counter = ListCounter(stack)
    pending = sorted((p for p in people if p.registers_at is not None), key=lambda p: p.registers_at or 0)
    active = [p for p in people if p.active]
    for second in range(int(args.minutes * 60)):
        clock.advance(PUMP_SECONDS)
        while pending and (pending[0].registers_at or 0) <= second:
            person = pending.pop(0)
            stack.graph.tenant.register_fido2_as_user(person.entra_id, "Bench key", AAGUID, "YubiKey 5 NFC")
            person.registered = clock.now()
        due = [p for p in active if p.registered is None and p.next_click <= second]
        for person in due:
            person.next_click = second + rng.expovariate(1 / CLICK_EVERY)
        await asyncio.gather(*(click(keydesk, p) for p in due))
        tally.clicks += len(due)
        while await keydesk.rt.deadlines.pump_once() >= 20:
            pass
        tally.per_second.append(counter.new())
    return tally


async def detections(keydesk: Keydesk, people: list[Person]) -> tuple[list[float], int]:
    delays, missed = [], 0
    async with keydesk.rt.db.read() as session:
        for person in people:
            if person.registered is None:
                continue
            row = await wizard_repo.for_request(session, person.request_id)
            if row is None or row.completed_at is None:
                missed += 1
            else:
                delays.append((row.completed_at - person.registered).total_seconds())
    return delays, missed


def busiest_minute(per_second: list[int]) -> int:
    window = sum(per_second[:60])
    busiest = window
    for i in range(60, len(per_second)):
        window += per_second[i] - per_second[i - 60]
        busiest = max(busiest, window)
    return busiest


async def main(args: argparse.Namespace) -> int:
    configure_logging("WARNING", "console")
    rng = random.Random(args.seed)
    random.seed(args.seed)
    clock = FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory(prefix="keydesk-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        stack, keydesk, people = await setup(args, url, clock)
        set_up = time.perf_counter() - started
        try:
            plan(people, args, rng)
            started = time.perf_counter()
            tally = await run(args, stack, keydesk, people, clock, rng)
            ran = time.perf_counter() - started
            delays, missed = await detections(keydesk, people)
        finally:
            await keydesk.rt.directory.close()
            await keydesk.rt.db.close()
            await stack.close()
    return report(args, tally, delays, missed, set_up, ran)


def report(
    args: argparse.Namespace, tally: Tally, delays: list[float], missed: int, set_up: float, ran: float
) -> int:
    budget = registration.POLL_BUDGET_PER_MINUTE
    bound = registration.detection_bound(args.users, PUMP_SECONDS)
    busiest = busiest_minute(tally.per_second)
    total = sum(tally.per_second)
    minutes = len(tally.per_second) / 60
    worst = max(delays, default=0.0)
    print(
        f"{args.users} people mid-guide for {args.minutes} simulated minutes "
        f"({tally.clicks} clicks, {len(delays) + missed} registrations); set-up {set_up:.1f} s, run {ran:.1f} s real"
    )
    print(
        f"Graph method-list calls: {total} in all, {total / minutes:.0f}/min on average, "
        f"busiest minute {busiest}; budget {budget}/min -> {busiest / budget:.0%} of budget"
    )
    if delays:
        ordered = sorted(delays)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(
            f"noticed after: median {statistics.median(delays):.0f} s, p95 {p95:.0f} s, worst {worst:.0f} s; "
            f"bound {bound:.0f} s -> worst is {worst / bound:.0%} of the bound; missed {missed}"
        )
    ok = busiest <= budget and worst <= bound and missed == 0
    print("OK: within budget and bound" if ok else "FAILED: over budget or bound, or a registration missed")
    return 0 if ok else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--registrations", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
