"""Durable timers in the database, pumped by APScheduler: survive restarts, run once across replicas.

A pump claims due rows in a short transaction, runs their handlers outside it, then finishes each row in
another short transaction, only if the claim is still its own. Delivery is at least once: a pump that
dies after a handler ran but before the finish leaves a claim that lapses after `claim_seconds`, and
the deadline runs again. Handlers must therefore be idempotent (deleting an already-deleted message
counts as done).

Outcomes of a run:
- the handler returns: the deadline is done;
- it raises `RetryLater(seconds, reason)` ("not yet", e.g. Graph's Retry-After or a poll that found
  nothing): the deadline is due again after exactly that delay and the attempt is not counted, so
  `max_attempts` never fails it. Such a handler owns its overall budget (put a give-up time in the
  payload and stop raising RetryLater when it has passed);
- it raises anything else, or outlives its claim: the attempt counts; the deadline is retried with
  exponential backoff and jitter, and marked failed (and logged as an error) after `max_attempts`;
- no handler is registered for its kind (e.g. a rolling deploy where an older replica pumps a newer
  kind): logged and offered again a minute later without counting an attempt, never marked failed,
  so it is not lost and a replica that knows the kind runs it.

Keys make scheduling idempotent: a key is scheduled once; scheduling it again is a no-op unless
`replace=True`, which resets the row to pending with the new due time and payload (also from inside
the deadline's own handler, to re-arm it: the running claim is then void and its finish a no-op).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.logs import get_logger, scrubber
from bot.store import deadline_repo
from bot.store.db import Database
from bot.store.models.deadlines import DeadlineRow

log = get_logger(__name__)

MAX_ERROR_CHARS = 300
MAX_DRAIN_ROUNDS = 50
HANDLER_SHARE_OF_CLAIM = 0.8
UNKNOWN_KIND_RETRY_SECONDS = 60.0
# While pumping fails (the database is down), skip ticks: 1 s, 2 s, 4 s… up to 30 s between tries.
OUTAGE_BACKOFF_FIRST = 1.0
OUTAGE_BACKOFF_CAP = 30.0


@dataclass(frozen=True)
class Deadline:
    id: int
    kind: str
    key: str | None
    due_at: datetime
    payload: dict[str, Any]
    attempts: int  # this run's attempt number, from 1; RetryLater deferrals are not counted


Handler = Callable[[Deadline], Awaitable[None]]


class RetryLater(Exception):
    """Raised by a handler: run me again in `seconds` (not a failure). `reason` is stored; keep it short."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason)
        self.seconds = max(0.0, float(seconds))
        self.reason = reason


class Deadlines:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        owner: str,
        claim_seconds: float = 60,
        batch: int = 20,
        max_attempts: int = 8,
        backoff_base: float = 5.0,
        backoff_cap: float = 900.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._owner = owner
        self._claim = timedelta(seconds=claim_seconds)
        self._batch = batch
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._handlers: dict[str, Handler] = {}
        self._job: Job | None = None
        self._pumping = asyncio.Lock()
        self._stopping = False
        self._outage = _Outage()

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for deadline kind {kind!r} is already registered")
        self._handlers[kind] = handler

    async def schedule(
        self,
        kind: str,
        due_at: datetime,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        replace: bool = False,
        session: AsyncSession | None = None,
    ) -> bool:
        """Persist a deadline; with `session` it commits (or not) with the caller's transaction.

        Returns True when a row was written (False: the key exists and `replace` was not asked).
        """
        if due_at.tzinfo is None:
            raise ValueError("due_at must be timezone-aware (a naive datetime is ambiguous)")
        values: dict[str, Any] = {
            "kind": kind,
            "key": key,
            "due_at": due_at,
            "payload": _json_safe(payload or {}),
            "now": self._clock.now(),
            "replace": replace,
        }
        if session is not None:
            return await deadline_repo.add(session, **values)
        async with self._db.session() as own:
            return await deadline_repo.add(own, **values)

    async def cancel(self, key: str, *, session: AsyncSession | None = None) -> bool:
        """Cancel a pending deadline by key; False if there was none pending."""
        if session is not None:
            return await deadline_repo.cancel(session, key, self._clock.now())
        async with self._db.session() as own:
            return await deadline_repo.cancel(own, key, self._clock.now())

    async def next_due(self) -> datetime | None:
        async with self._db.read() as session:
            return await deadline_repo.next_due(session)

    async def purge(self, older_than: timedelta) -> int:
        async with self._db.session() as session:
            return await deadline_repo.purge_finished(session, self._clock.now() - older_than)

    async def pump_once(self) -> int:
        """Claim due deadlines, run them concurrently, record each outcome. Returns how many ran."""
        token = f"{self._owner}/{secrets.token_hex(6)}"
        now = self._clock.now()
        async with self._db.session() as session:
            rows = await deadline_repo.claim_due(
                session, now=now, token=token, until=now + self._claim, limit=self._batch
            )
        claimed = [_to_deadline(row) for row in rows]
        await asyncio.gather(*(self._run(deadline, token) for deadline in claimed))
        return len(claimed)

    def start(self, scheduler: AsyncIOScheduler, every_seconds: float) -> None:
        """Pump every `every_seconds`, and once right away so deadlines missed while down run now."""
        self._stopping = False
        self._job = scheduler.add_job(
            self._pump_job,
            "interval",
            seconds=every_seconds,
            id=f"keydesk-deadlines-{self._owner}",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            misfire_grace_time=None,
            # APScheduler runs on wall time, whatever clock the deadlines themselves use.
            next_run_time=datetime.now(UTC),
        )

    async def stop(self) -> None:
        """Stop pumping and wait for a run in progress (handlers included) to finish.

        On shutdown call it before `scheduler.shutdown()` and `db.close()`: the scheduler would cancel
        a run mid-transaction, and its deadlines would wait out their claims before running again.
        """
        self._stopping = True
        if self._job is not None:
            with contextlib.suppress(JobLookupError):
                self._job.remove()
            self._job = None
        async with self._pumping:
            pass

    async def _pump_job(self) -> None:
        """Drain a backlog (e.g. after a restart) in full batches; never let an error kill the job.

        While pumping fails (the database is down), ticks are skipped with backoff and the outage is
        logged once as an error, then once more when pumping works again.
        """
        loop = asyncio.get_running_loop()
        if not self._outage.due(loop.time()):
            return
        async with self._pumping:
            try:
                for _ in range(MAX_DRAIN_ROUNDS):
                    if self._stopping or await self.pump_once() < self._batch:
                        break
            except Exception as exc:  # the database may be down; a later tick tries again
                retry_in = self._outage.failed(loop.time())
                fields = {"owner": self._owner, "error": _describe(exc), "retry_in": retry_in}
                if self._outage.failures == 1:
                    log.error("deadlines.pump_failed", **fields)
                else:
                    log.debug("deadlines.pump_still_failing", failures=self._outage.failures, **fields)
                return
            if self._outage.failures:
                log.warning("deadlines.pump_recovered", owner=self._owner, failures=self._outage.failures)
                self._outage = _Outage()

    async def _run(self, deadline: Deadline, token: str) -> None:
        handler = self._handlers.get(deadline.kind)
        try:
            if handler is None:
                await self._unknown_kind(deadline, token)
                return
            if deadline.attempts > self._max_attempts:
                await self._give_up(deadline, token)
                return
            try:
                # Finish well inside the claim, so no other pump can take the deadline while it runs.
                async with asyncio.timeout(self._claim.total_seconds() * HANDLER_SHARE_OF_CLAIM):
                    await handler(deadline)
            except RetryLater as later:
                await self._finish_later(deadline, token, later)
            except Exception as exc:
                await self._finish_failed_attempt(deadline, token, exc)
            else:
                await self._finish(deadline_repo.mark_done, deadline.id, token, self._clock.now())
        except Exception as exc:  # finishing failed (database down): the claim lapses and it runs again
            log.error("deadline.finish_failed", id=deadline.id, kind=deadline.kind, error=_describe(exc))

    async def _unknown_kind(self, deadline: Deadline, token: str) -> None:
        """Not ours to fail: a replica that knows the kind will run it, with all its attempts intact."""
        delay = min(UNKNOWN_KIND_RETRY_SECONDS, self._backoff_cap)
        log.warning("deadline.unknown_kind", id=deadline.id, kind=deadline.kind, retry_in=delay)
        due = self._clock.now() + timedelta(seconds=delay)
        error = f"no handler for kind {deadline.kind!r}"
        await self._release(deadline, token, due_at=due, error=error, refund_attempt=True)

    async def _give_up(self, deadline: Deadline, token: str) -> None:
        """Earlier runs never finished (the process died each time): stop before it takes us down again."""
        error = f"gave up: {deadline.attempts - 1} runs did not finish"
        log.error("deadline.failed", id=deadline.id, kind=deadline.kind, key=deadline.key, error=error)
        await self._finish(deadline_repo.mark_failed, deadline.id, token, self._clock.now(), error)

    async def _finish_later(self, deadline: Deadline, token: str, later: RetryLater) -> None:
        due = self._clock.now() + timedelta(seconds=later.seconds)
        reason = _clip(f"retry later: {later.reason}") if later.reason else None
        await self._release(deadline, token, due_at=due, error=reason, refund_attempt=True)

    async def _finish_failed_attempt(self, deadline: Deadline, token: str, exc: Exception) -> None:
        error = _describe(exc)
        fields = {"id": deadline.id, "kind": deadline.kind, "key": deadline.key, "attempt": deadline.attempts}
        if deadline.attempts >= self._max_attempts:
            log.error("deadline.failed", **fields, error=error)
            await self._finish(deadline_repo.mark_failed, deadline.id, token, self._clock.now(), error)
            return
        delay = self._backoff(deadline.attempts)
        log.warning("deadline.retry", **fields, error=error, retry_in=round(delay, 1))
        due = self._clock.now() + timedelta(seconds=delay)
        await self._release(deadline, token, due_at=due, error=error, refund_attempt=False)

    async def _release(
        self, deadline: Deadline, token: str, *, due_at: datetime, error: str | None, refund_attempt: bool
    ) -> None:
        async with self._db.session() as session:
            owned = await deadline_repo.release(
                session, deadline.id, token, due_at=due_at, error=error, refund_attempt=refund_attempt
            )
        if not owned:
            log.info("deadline.claim_lost", id=deadline.id, kind=deadline.kind)

    async def _finish(self, mark: Callable[..., Awaitable[bool]], *args: Any) -> None:
        async with self._db.session() as session:
            owned = await mark(session, *args)
        if not owned:
            log.info("deadline.claim_lost", id=args[0])

    def _backoff(self, attempt: int) -> float:
        """Exponential with 'equal jitter': at least half the step, so retries never bunch up at zero."""
        step = min(self._backoff_cap, self._backoff_base * 2 ** min(max(0, attempt - 1), 32))
        return step / 2 + random.uniform(0, step / 2)


class _Outage:
    """Consecutive pump failures and when to try again (event-loop time, not the deadlines' clock)."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    def due(self, now: float) -> bool:
        return now >= self.retry_at

    def failed(self, now: float) -> float:
        self.failures += 1
        delay = min(OUTAGE_BACKOFF_CAP, OUTAGE_BACKOFF_FIRST * 2 ** min(self.failures - 1, 16))
        self.retry_at = now + delay
        return delay


def _to_deadline(row: DeadlineRow) -> Deadline:
    return Deadline(
        id=row.id,
        kind=row.kind,
        key=row.key,
        due_at=row.due_at,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
    )


def _json_safe(payload: dict[str, Any]) -> dict[str, Any]:
    """Fail at scheduling, not at pump time; a Secret is not JSON and is refused here too."""
    result: dict[str, Any] = json.loads(json.dumps(payload, allow_nan=False))
    return result


def _describe(exc: BaseException) -> str:
    """A short, scrubbed description: the type always, the message only as far as it is short."""
    message = scrubber.scrub(str(exc)) if str(exc) else ""
    return _clip(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
