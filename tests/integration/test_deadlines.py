"""Durable deadlines: due times, idempotent keys, restarts, crashes, retries, give-up, the scheduler job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import FrozenClock
from bot.deadlines import Deadline, Deadlines, RetryLater
from bot.logs import scrubber
from bot.secret import Secret
from bot.store import deadline_repo
from bot.store.db import Database
from bot.store.models.deadlines import DeadlineRow


class Recorder:
    """A handler that records each run and fails the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.runs: list[Deadline] = []
        self.failures = failures

    async def __call__(self, deadline: Deadline) -> None:
        self.runs.append(deadline)
        if len(self.runs) <= self.failures:
            raise RuntimeError(f"attempt {len(self.runs)} failed")


@pytest.fixture
def deadlines(database: Database, clock: FrozenClock) -> Deadlines:
    return Deadlines(database, clock, owner="test")


async def row(db: Database, key: str) -> DeadlineRow:
    async with db.session() as session:
        found = await deadline_repo.get_by_key(session, key)
    assert found is not None
    return found


async def test_runs_when_due_once_with_its_payload(
    database: Database, deadlines: Deadlines, clock: FrozenClock
) -> None:
    handler = Recorder()
    deadlines.register("tap.expire", handler)
    await deadlines.schedule("tap.expire", clock.now() + timedelta(seconds=10), {"request": 42}, key="r42")

    assert await deadlines.pump_once() == 0
    clock.advance(10)
    assert await deadlines.pump_once() == 1
    assert await deadlines.pump_once() == 0

    [run] = handler.runs
    assert (run.kind, run.key, run.payload, run.attempts) == ("tap.expire", "r42", {"request": 42}, 1)
    done = await row(database, "r42")
    assert (done.state, done.finished_at, done.claimed_by) == ("done", clock.now(), None)


async def test_a_key_is_scheduled_once_unless_replaced(
    database: Database, deadlines: Deadlines, clock: FrozenClock
) -> None:
    handler = Recorder()
    deadlines.register("redact", handler)
    first_due = clock.now() + timedelta(seconds=5)
    assert await deadlines.schedule("redact", first_due, {"v": 1}, key="msg-1")
    assert not await deadlines.schedule("redact", clock.now() + timedelta(seconds=1), {"v": 2}, key="msg-1")
    assert (await row(database, "msg-1")).due_at == first_due

    assert await deadlines.schedule(
        "redact", clock.now() + timedelta(seconds=60), {"v": 3}, key="msg-1", replace=True
    )
    clock.advance(30)
    assert await deadlines.pump_once() == 0
    clock.advance(30)
    assert await deadlines.pump_once() == 1
    assert [run.payload for run in handler.runs] == [{"v": 3}]
    # Done keys stay taken: a redelivered request that schedules again does not run it twice.
    assert not await deadlines.schedule("redact", clock.now(), {"v": 4}, key="msg-1")
    assert await deadlines.pump_once() == 0


async def test_schedule_joins_the_callers_transaction(
    database: Database, deadlines: Deadlines, clock: FrozenClock
) -> None:
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await deadlines.schedule("x", clock.now(), key="rolled-back", session=session)
            raise RuntimeError("the state change failed")
    async with database.session() as session:
        await deadlines.schedule("x", clock.now(), key="committed", session=session)
        assert await deadline_repo.get_by_key(session, "rolled-back") is None
    assert (await row(database, "committed")).state == "pending"


async def test_survives_a_restart(database_url: str, database: Database, clock: FrozenClock) -> None:
    before = Deadlines(database, clock, owner="replica-before")
    await before.schedule("tap.expire", clock.now() + timedelta(minutes=10), {"request": 7}, key="expire-7")
    await database.close()
    del before

    clock.advance(timedelta(hours=2))  # the bot was down when it fell due
    restarted_db = Database(database_url)
    try:
        after = Deadlines(restarted_db, clock, owner="replica-after")
        handler = Recorder()
        after.register("tap.expire", handler)
        assert await after.pump_once() == 1
        assert [run.payload for run in handler.runs] == [{"request": 7}]
    finally:
        await restarted_db.close()


async def test_a_crash_mid_handler_is_run_again_after_the_claim_lapses(
    database: Database, clock: FrozenClock
) -> None:
    started = asyncio.Event()

    async def hangs(_deadline: Deadline) -> None:
        started.set()
        await asyncio.Event().wait()

    crashing = Deadlines(database, clock, owner="crashing", claim_seconds=60)
    crashing.register("poll", hangs)
    await crashing.schedule("poll", clock.now(), key="poll-1")
    pump = asyncio.create_task(crashing.pump_once())
    await asyncio.wait_for(started.wait(), 5)
    pump.cancel()  # the process dies: the claim was taken and never finished
    with pytest.raises(asyncio.CancelledError):
        await pump

    survivor = Deadlines(database, clock, owner="survivor", claim_seconds=60)
    handler = Recorder()
    survivor.register("poll", handler)
    clock.advance(59)
    assert await survivor.pump_once() == 0  # the claim still holds
    clock.advance(2)
    assert await survivor.pump_once() == 1
    assert handler.runs[0].attempts == 2  # the crashed run counted
    assert (await row(database, "poll-1")).state == "done"


async def test_failures_retry_with_exponential_backoff(database: Database, clock: FrozenClock) -> None:
    deadlines = Deadlines(database, clock, owner="t", backoff_base=5, backoff_cap=900)
    handler = Recorder(failures=2)
    deadlines.register("job", handler)
    await deadlines.schedule("job", clock.now(), key="job-1")

    assert await deadlines.pump_once() == 1
    first = await row(database, "job-1")
    assert first.state == "pending"
    assert "RuntimeError" in (first.last_error or "")
    assert clock.now() + timedelta(seconds=2.5) <= first.due_at <= clock.now() + timedelta(seconds=5)

    clock.set(first.due_at)
    assert await deadlines.pump_once() == 1
    second = await row(database, "job-1")
    assert clock.now() + timedelta(seconds=5) <= second.due_at <= clock.now() + timedelta(seconds=10)

    clock.set(second.due_at)
    assert await deadlines.pump_once() == 1
    assert [run.attempts for run in handler.runs] == [1, 2, 3]
    assert (await row(database, "job-1")).state == "done"


async def test_gives_up_after_max_attempts(database: Database, clock: FrozenClock) -> None:
    deadlines = Deadlines(database, clock, owner="t", max_attempts=3, backoff_cap=60)
    handler = Recorder(failures=100)
    deadlines.register("job", handler)
    await deadlines.schedule("job", clock.now(), key="doomed")
    for _ in range(10):
        await deadlines.pump_once()
        clock.advance(61)
    assert len(handler.runs) == 3
    failed = await row(database, "doomed")
    assert (failed.state, failed.attempts) == ("failed", 3)
    assert failed.last_error == "RuntimeError: attempt 3 failed"
    assert await deadlines.next_due() is None


async def test_retry_later_honours_the_delay_without_counting_a_failure(
    database: Database, clock: FrozenClock
) -> None:
    runs: list[int] = []

    async def throttled(deadline: Deadline) -> None:
        runs.append(deadline.attempts)
        if len(runs) <= 5:
            raise RetryLater(30, "graph throttled (Retry-After: 30)")

    deadlines = Deadlines(database, clock, owner="t", max_attempts=2)
    deadlines.register("graph.call", throttled)
    await deadlines.schedule("graph.call", clock.now(), key="call")
    for _ in range(5):
        assert await deadlines.pump_once() == 1
        waiting = await row(database, "call")
        assert waiting.due_at == clock.now() + timedelta(seconds=30)
        assert waiting.last_error == "retry later: graph throttled (Retry-After: 30)"
        clock.advance(29)
        assert await deadlines.pump_once() == 0  # never early
        clock.advance(1)
    assert await deadlines.pump_once() == 1
    assert runs == [1] * 6
    assert (await row(database, "call")).state == "done"


async def test_an_unknown_kind_is_kept_and_run_once_a_handler_exists(
    database: Database, clock: FrozenClock
) -> None:
    old_replica = Deadlines(database, clock, owner="old", max_attempts=2)
    await old_replica.schedule("added.in.next.release", clock.now(), {"n": 1}, key="new-kind")
    for _ in range(4):  # more rounds than max_attempts: still never failed
        assert await old_replica.pump_once() == 1
        kept = await row(database, "new-kind")
        assert (kept.state, kept.attempts) == ("pending", 0)
        assert kept.due_at == clock.now() + timedelta(seconds=60)
        assert "no handler" in (kept.last_error or "")
        clock.set(kept.due_at)

    new_replica = Deadlines(database, clock, owner="new", max_attempts=2)
    handler = Recorder()
    new_replica.register("added.in.next.release", handler)
    assert await new_replica.pump_once() == 1
    assert [(run.payload, run.attempts) for run in handler.runs] == [({"n": 1}, 1)]


async def test_naive_due_times_are_refused(deadlines: Deadlines) -> None:
    with pytest.raises(ValueError, match="naive"):
        await deadlines.schedule("x", datetime(2026, 11, 23, 9, 0))


async def test_a_handler_cannot_outlive_its_claim(database: Database, clock: FrozenClock) -> None:
    async def slow(_deadline: Deadline) -> None:
        await asyncio.sleep(10)

    deadlines = Deadlines(database, clock, owner="t", claim_seconds=0.2)
    deadlines.register("slow", slow)
    await deadlines.schedule("slow", clock.now(), key="slow-1")
    await asyncio.wait_for(deadlines.pump_once(), 5)
    timed_out = await row(database, "slow-1")
    assert (timed_out.state, timed_out.attempts, timed_out.last_error) == ("pending", 1, "TimeoutError")


async def test_runs_that_never_finish_are_given_up_without_running_again(
    database: Database, clock: FrozenClock
) -> None:
    deadlines = Deadlines(database, clock, owner="t", max_attempts=2, claim_seconds=60)
    handler = Recorder()
    deadlines.register("poison", handler)
    await deadlines.schedule("poison", clock.now(), key="poison-1")
    for crash in range(2):  # two runs that each took the process down before finishing
        async with database.session() as session:
            now = clock.now()
            claimed = await deadline_repo.claim_due(
                session, now=now, token=f"dead-{crash}", until=now + timedelta(seconds=60), limit=5
            )
        assert len(claimed) == 1
        clock.advance(61)
    assert await deadlines.pump_once() == 1
    assert handler.runs == []
    given_up = await row(database, "poison-1")
    assert given_up.state == "failed"
    assert "did not finish" in (given_up.last_error or "")


async def test_cancel_stops_a_pending_deadline(
    database: Database, deadlines: Deadlines, clock: FrozenClock
) -> None:
    handler = Recorder()
    deadlines.register("tap.expire", handler)
    await deadlines.schedule("tap.expire", clock.now() + timedelta(seconds=5), key="expire-9")
    assert await deadlines.cancel("expire-9")
    assert not await deadlines.cancel("expire-9")
    assert not await deadlines.cancel("never-scheduled")
    clock.advance(10)
    assert await deadlines.pump_once() == 0
    assert (await row(database, "expire-9")).state == "cancelled"

    assert await deadlines.schedule("tap.expire", clock.now(), key="expire-9", replace=True)
    assert await deadlines.pump_once() == 1
    assert len(handler.runs) == 1


async def test_a_handler_can_rearm_its_own_key(
    database: Database, deadlines: Deadlines, clock: FrozenClock
) -> None:
    polls: list[int] = []

    async def poll(deadline: Deadline) -> None:
        polls.append(deadline.payload["round"])
        if deadline.payload["round"] < 3:
            later = clock.now() + timedelta(seconds=30)
            payload = {"round": deadline.payload["round"] + 1}
            await deadlines.schedule("poll", later, payload, key=deadline.key, replace=True)

    deadlines.register("poll", poll)
    await deadlines.schedule("poll", clock.now(), {"round": 1}, key="watch-1")
    for _ in range(5):
        await deadlines.pump_once()
        clock.advance(30)
    assert polls == [1, 2, 3]
    assert (await row(database, "watch-1")).state == "done"


async def test_next_due_is_the_earliest_pending(deadlines: Deadlines, clock: FrozenClock) -> None:
    assert await deadlines.next_due() is None
    soon, later = clock.now() + timedelta(seconds=5), clock.now() + timedelta(hours=1)
    await deadlines.schedule("a", later)
    await deadlines.schedule("a", soon)
    assert await deadlines.next_due() == soon
    deadlines.register("a", Recorder())
    clock.set(soon)
    await deadlines.pump_once()
    assert await deadlines.next_due() == later


async def test_errors_are_short_and_scrubbed_and_payloads_refuse_secrets(
    database: Database, clock: FrozenClock
) -> None:
    canary = "CANARY-tap-7f3a91"
    scrubber.add(canary)

    async def leaky(_deadline: Deadline) -> None:
        raise RuntimeError(f"graph said {canary} " + "x" * 2000)

    deadlines = Deadlines(database, clock, owner="t")
    deadlines.register("leaky", leaky)
    await deadlines.schedule("leaky", clock.now(), key="leaky-1")
    await deadlines.pump_once()
    error = (await row(database, "leaky-1")).last_error or ""
    assert error.startswith("RuntimeError: graph said ********")
    assert canary not in error
    assert len(error) <= 300

    with pytest.raises(TypeError):
        await deadlines.schedule("leaky", clock.now(), {"tap": Secret(canary)})


async def test_purge_drops_old_finished_rows_but_keeps_failures(
    database: Database, clock: FrozenClock
) -> None:
    deadlines = Deadlines(database, clock, owner="t", max_attempts=1)
    deadlines.register("ok", Recorder())
    deadlines.register("bad", Recorder(failures=1))
    await deadlines.schedule("ok", clock.now(), key="ok-1")
    await deadlines.schedule("bad", clock.now(), key="bad-1")
    await deadlines.pump_once()
    clock.advance(timedelta(days=8))
    assert await deadlines.purge(timedelta(days=7)) == 1
    assert (await row(database, "bad-1")).state == "failed"


@pytest.fixture
async def scheduler() -> AsyncIterator[AsyncIOScheduler]:
    running = AsyncIOScheduler()
    running.start()
    yield running
    running.shutdown(wait=False)


async def test_start_runs_missed_deadlines_immediately(
    database: Database, clock: FrozenClock, scheduler: AsyncIOScheduler
) -> None:
    ran = asyncio.Event()

    async def redact(_deadline: Deadline) -> None:
        ran.set()

    deadlines = Deadlines(database, clock, owner="t")
    deadlines.register("redact", redact)
    await deadlines.schedule("redact", clock.now() - timedelta(minutes=5), key="missed")
    deadlines.start(scheduler, every_seconds=3600)  # far longer than the test: only the startup run counts
    await asyncio.wait_for(ran.wait(), 5)
    job = scheduler.get_job("keydesk-deadlines-t")
    assert job is not None
    assert (job.max_instances, job.coalesce) == (1, True)
    await deadlines.stop()
    assert scheduler.get_job("keydesk-deadlines-t") is None


async def test_the_startup_run_drains_a_backlog_beyond_one_batch(
    database: Database, clock: FrozenClock, scheduler: AsyncIOScheduler
) -> None:
    deadlines = Deadlines(database, clock, owner="t", batch=5)
    all_ran = asyncio.Event()
    runs: list[int] = []

    async def redact(deadline: Deadline) -> None:
        runs.append(deadline.id)
        if len(runs) == 23:
            all_ran.set()

    deadlines.register("redact", redact)
    for _ in range(23):
        await deadlines.schedule("redact", clock.now())
    deadlines.start(scheduler, every_seconds=3600)
    await asyncio.wait_for(all_ran.wait(), 5)
    await deadlines.stop()
    assert sorted(runs) == sorted(set(runs))
    assert await deadlines.next_due() is None


async def test_the_pump_job_survives_database_errors(database_url: str, clock: FrozenClock) -> None:
    broken = Database(database_url)  # an empty database: every query fails
    try:
        deadlines = Deadlines(broken, clock, owner="t")
        with pytest.raises(Exception, match="deadlines"):
            await deadlines.pump_once()
        await deadlines._pump_job()  # the scheduled job logs instead: the next tick tries again
    finally:
        await broken.close()
