"""The shared Retry-After gate in `CallRunner`: one caller behaves as before; many callers of one throttle
class wait for Graph's Retry-After together instead of each knocking; a crowd goes through a token
bucket at its rate. Time is virtual (the runner's injected sleep and clock), so nothing here is timed."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from kiota_abstractions.api_error import APIError

from bot.directory import Throttled
from bot.directory.metrics import DirectoryMetrics
from bot.directory.resilience import CallRunner, RetryPolicy
from bot.sandbox.graph_sim.throttle import Throttle


class VirtualTime:
    """A clock that moves only when every task is waiting: then it jumps to the earliest sleeper."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def run(self, *calls: Awaitable[object]) -> list[object]:
        """Run `calls` to the end, advancing time whenever all of them are blocked."""
        tasks = [asyncio.ensure_future(c) for c in calls]
        while not all(t.done() for t in tasks):
            for _ in range(50):  # let every runnable task reach its next wait
                await asyncio.sleep(0)
            live = [s for s in self._sleepers if not s[2].done()]
            heapq.heapify(live)
            self._sleepers = live
            if not live:
                continue
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            future.set_result(None)
        return [t.exception() or t.result() for t in tasks]


@dataclass
class FakeGraph:
    """Answers attempts from a token bucket (or a closed window) and records when each one arrived."""

    clock: VirtualTime
    throttle: Throttle | None = None
    closed_until: float = 0.0
    closed_retry_after: float = 0.0
    arrivals: list[tuple[float, str, int]] = field(default_factory=list)

    def attempt(self, who: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            now = self.clock.now
            if now < self.closed_until:
                self.arrivals.append((now, who, 429))
                raise too_many(self.closed_retry_after or self.closed_until - now)
            wait = self.throttle.take() if self.throttle else None
            if wait is not None:
                self.arrivals.append((now, who, 429))
                raise too_many(wait)
            self.arrivals.append((now, who, 201))
            return who

        return call

    def refused(self) -> int:
        return sum(1 for _, _, status in self.arrivals if status == 429)


def too_many(retry_after: float) -> APIError:
    return APIError("slow down", 429, {"retry-after": f"{retry_after:.3f}"})


def runner(clock: VirtualTime, **policy: float) -> CallRunner:
    return CallRunner(
        timeout=30,
        policy=RetryPolicy(**policy),  # type: ignore[arg-type]
        metrics=DirectoryMetrics(),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


@pytest.fixture
def clock() -> VirtualTime:
    return VirtualTime()


async def test_one_caller_waits_as_told_then_succeeds(clock: VirtualTime) -> None:
    graph = FakeGraph(clock, closed_until=2.0, closed_retry_after=2.0)
    run = runner(clock)

    [result] = await clock.run(run.run("create_tap", graph.attempt("ada"), idempotent=False))

    assert result == "ada"
    assert graph.arrivals == [(0.0, "ada", 429), (2.0, "ada", 201)]


async def test_other_callers_wait_for_the_retry_after_instead_of_trying(clock: VirtualTime) -> None:
    graph = FakeGraph(clock, closed_until=5.0, closed_retry_after=5.0)
    run = runner(clock)

    async def later(who: str, at: float) -> str:
        await clock.sleep(at)
        return await run.run("create_tap", graph.attempt(who), idempotent=False)

    results = await clock.run(later("ada", 0.0), later("bob", 1.0), later("cy", 4.0))

    assert results == ["ada", "bob", "cy"]
    # Only Ada asked while Graph was closed; Bob and Cy, who started later, waited for her Retry-After.
    assert graph.arrivals[0] == (0.0, "ada", 429)
    assert all(at >= 5.0 for at, _, _ in graph.arrivals[1:])
    assert graph.refused() == 1


async def test_a_crowd_goes_through_a_token_bucket_at_its_rate(clock: VirtualTime) -> None:
    throttle = Throttle(rate=10, burst=1, monotonic=clock.monotonic)
    graph = FakeGraph(clock, throttle=throttle)
    run = runner(clock)
    crowd = [f"u{n}" for n in range(50)]

    results = await clock.run(*(run.run("create_tap", graph.attempt(who), idempotent=False) for who in crowd))

    assert sorted(map(str, results)) == sorted(crowd)  # nobody gave up, nobody was served twice
    admitted = [at for at, _, status in graph.arrivals if status == 201]
    assert len(admitted) == 50
    # No idle token: the last pass comes exactly when the bucket allows it (virtual time, no latency).
    assert max(admitted) == pytest.approx(throttle.lower_bound(50), abs=0.01)
    # The first wave finds one token (49 refusals); afterwards about one probe per pass, not a stampede.
    assert graph.refused() <= 49 + 50


async def test_a_queue_longer_than_the_budget_raises_throttled_with_a_retry_after(clock: VirtualTime) -> None:
    throttle = Throttle(rate=1, burst=1, monotonic=clock.monotonic)
    graph = FakeGraph(clock, throttle=throttle)
    run = runner(clock, budget_seconds=3.0)

    results = await clock.run(
        *(run.run("create_tap", graph.attempt(f"u{n}"), idempotent=False) for n in range(8))
    )

    served = [r for r in results if isinstance(r, str)]
    throttled = [r for r in results if isinstance(r, Throttled)]
    assert served and throttled and len(served) + len(throttled) == 8
    assert all(t.retry_after > 0 for t in throttled)
    assert clock.now <= 3.0 + 1.0  # nobody waited far beyond the budget for a turn


async def test_calm_again_once_the_crowd_has_passed(clock: VirtualTime) -> None:
    graph = FakeGraph(clock, closed_until=1.0, closed_retry_after=1.0)
    run = runner(clock)
    await clock.run(*(run.run("create_tap", graph.attempt(f"u{n}"), idempotent=False) for n in range(3)))
    graph.arrivals.clear()
    started = clock.now

    await clock.run(*(run.run("create_tap", graph.attempt(f"v{n}"), idempotent=False) for n in range(3)))

    # Calm: the three go at once again (no turns, no waiting).
    assert [at for at, _, _ in graph.arrivals] == [started] * 3


async def test_a_throttled_class_does_not_slow_another(clock: VirtualTime) -> None:
    graph = FakeGraph(clock, closed_until=10.0, closed_retry_after=10.0)
    reads = FakeGraph(clock)
    run = runner(clock)

    async def read_soon() -> str:
        await clock.sleep(0.5)
        return await run.run("get_user", reads.attempt("ada"), idempotent=True)

    results = await clock.run(run.run("create_tap", graph.attempt("ada"), idempotent=False), read_soon())

    assert results == ["ada", "ada"]
    assert reads.arrivals == [(0.5, "ada", 201)]


async def test_a_retry_after_beyond_the_budget_is_left_to_each_caller(clock: VirtualTime) -> None:
    graph = FakeGraph(clock, closed_until=60.0, closed_retry_after=60.0)
    run = runner(clock, budget_seconds=30.0)

    async def later(who: str, at: float) -> str:
        await clock.sleep(at)
        return await run.run("delete_tap", graph.attempt(who), idempotent=True)

    results = await clock.run(later("ada", 0.0), later("bob", 0.5))

    # Neither waits a minute in-process: both hand the wait to their durable retry, with Graph's own answer.
    assert all(isinstance(r, Throttled) and r.retry_after == pytest.approx(60.0, abs=0.6) for r in results)
    assert [(at, who) for at, who, _ in graph.arrivals] == [(0.0, "ada"), (0.5, "bob")]
