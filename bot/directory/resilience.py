"""Every Graph call runs through `CallRunner.run`: one timeout per attempt, a bounded retry loop that
honours Retry-After, error mapping, and metrics.

Why our own loop rather than the SDK's RetryHandler (which is switched off client-wide in `clients.py`):
the kiota handler has no total time budget (it sleeps any Retry-After below 180 s, three times over),
and it retries POSTs on 503/504, which for a Temporary Access Pass could mint a second pass after the
first was committed. Here:

* 429 is retried for every operation (Graph created nothing) when the wait fits the budget;
* 503/504 and transport errors are retried only for idempotent operations (reads, deletes, revoke);
* a timeout is never retried (the attempt already used the whole per-call timeout);
* when the next wait does not fit the budget, 429 raises `Throttled(retry_after)` so the caller can
  schedule a durable retry, and 5xx raises `Unavailable`.

Throttling is shared: a 429 tells every caller of that kind of call to slow down, not only the one
that got it. `RetryAfterGate` (one per runner, so one per gateway) remembers Graph's Retry-After per
throttle class (the operation name by default) and, while the class is throttled, lets its calls try
one at a time, each no earlier than Graph said. Without it, 200 people revealing at once each back
off on their own and keep knocking on a throttle that admits one of them per token; with it the
crowd goes through at the rate Graph allows and gets about one 429 per pass instead of many. A
Retry-After longer than the call's budget is not shared: that caller schedules a durable retry and
the others still get Graph's own answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError

from bot.directory import errormap
from bot.directory.errors import Throttled
from bot.directory.metrics import DirectoryMetrics
from bot.logs import get_logger

T = TypeVar("T")
log = get_logger(__name__)

RETRYABLE_WHEN_IDEMPOTENT = frozenset({503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    budget_seconds: float = 30.0  # total time one call may spend waiting between attempts
    max_attempts: int = 5
    base_backoff: float = 0.5  # used when Graph gives no Retry-After
    max_backoff: float = 8.0

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, self.base_backoff * 2 ** (attempt - 1))
        return delay + random.uniform(0, delay / 4)


@dataclass
class _ClassState:
    until: float = 0.0  # no attempt of this class starts before this (monotonic) time
    throttled: bool = False
    waiting: int = 0  # callers queued for the turn
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class RetryAfterGate:
    """Graph's Retry-After, shared by every caller of one throttle class.

    Calm (no 429 lately): calls run in parallel and never wait here. After a 429 with Retry-After N,
    the class is throttled: every caller waits for the single turn (first come, first served), and
    the holder does not try before N seconds after that answer. A holder that gets 429 again keeps
    the turn and waits as told; one that gets any other answer passes it on. The class is calm again
    after a non-429 answer when nobody is queued. One caller alone sees exactly the old behaviour:
    it waits Retry-After, then tries again.
    """

    def __init__(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sleep = sleep
        self._monotonic = monotonic
        self._classes: dict[str, _ClassState] = {}

    def ticket(self, throttle_class: str) -> GateTicket:
        """One call's handle on the gate; `release()` it when the call is over."""
        state = self._classes.setdefault(throttle_class, _ClassState())
        return GateTicket(state, self._sleep, self._monotonic)

    def closed_for(self, throttle_class: str) -> float:
        """Seconds until a call of this class may try again (0 when it may now)."""
        state = self._classes.get(throttle_class)
        return max(0.0, state.until - self._monotonic()) if state else 0.0


class GateTicket:
    def __init__(
        self, state: _ClassState, sleep: Callable[[float], Awaitable[None]], monotonic: Callable[[], float]
    ) -> None:
        self._state = state
        self._sleep = sleep
        self._monotonic = monotonic
        self._holding = False

    async def wait(self, budget: float) -> None:
        """Before an attempt. Raises TimeoutError (the turn did not come within `budget` seconds)
        or `GateClosed` (the wait Graph asked for does not fit `budget`)."""
        state = self._state
        if not (state.throttled or self._holding):
            return
        started = self._monotonic()
        if not self._holding:
            state.waiting += 1
            try:
                if not await self._acquire_within(max(0.0, budget)):
                    raise TimeoutError
            finally:
                state.waiting -= 1
            self._holding = True
        delay = state.until - self._monotonic()
        if delay > budget - (self._monotonic() - started):
            raise GateClosed(delay)
        if delay > 0:
            await self._sleep(delay)

    async def _acquire_within(self, seconds: float) -> bool:
        """Take the turn, waiting at most `seconds` (measured with the injected sleep)."""
        turn = self._state.turn
        acquiring = asyncio.ensure_future(turn.acquire())
        timer = asyncio.ensure_future(self._sleep(seconds))
        got = False
        try:
            await asyncio.wait({acquiring, timer}, return_when=asyncio.FIRST_COMPLETED)
            got = acquiring.done() and not acquiring.cancelled() and acquiring.exception() is None
        finally:
            timer.cancel()
            if not got:
                if acquiring.done() and not acquiring.cancelled() and acquiring.exception() is None:
                    turn.release()  # taken just as this wait was cancelled: hand it on
                else:
                    acquiring.cancel()  # a cancelled acquire never ends up holding the lock
        return got

    def refused(self, retry_after: float) -> None:
        """Graph answered 429: nobody in this class tries again for `retry_after` seconds."""
        state = self._state
        state.throttled = True
        state.until = max(state.until, self._monotonic() + retry_after)

    def answered(self) -> None:
        """Any answer but 429: Graph takes calls of this class again (once nobody is queued and the
        last Retry-After has run out)."""
        state = self._state
        if state.waiting == 0 and self._monotonic() >= state.until:
            state.throttled = False

    def release(self) -> None:
        if self._holding:
            self._holding = False
            self._state.turn.release()


class GateClosed(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"throttled for {retry_after:.3f} s more")
        self.retry_after = retry_after


class CallRunner:
    def __init__(
        self,
        *,
        timeout: float,
        policy: RetryPolicy,
        metrics: DirectoryMetrics,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        gate: RetryAfterGate | None = None,
    ) -> None:
        self._timeout = timeout
        self._policy = policy
        self._metrics = metrics
        self._sleep = sleep
        self._monotonic = monotonic
        self.gate = gate or RetryAfterGate(sleep=sleep, monotonic=monotonic)

    async def run(
        self,
        operation: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        idempotent: bool,
        hide: Iterable[str] = (),
        throttle_class: str | None = None,
    ) -> T:
        """Run `attempt` (one SDK call) until it succeeds or must give up; raise our errors only.

        `hide` lists values (a verification code) that must be masked if Graph echoes them back.
        `throttle_class` names the calls a 429 slows down together (default: this operation).
        """
        hidden = tuple(hide)
        started = self._monotonic()
        tally = _Tally()
        klass = throttle_class or operation
        ticket = self.gate.ticket(klass)
        try:
            while True:
                await self._wait_turn(ticket, klass, operation, started, tally)
                tally.attempts += 1
                try:
                    async with asyncio.timeout(self._timeout):
                        result = await attempt()
                    tally.ok = True
                    ticket.answered()
                    return result
                except APIError as exc:
                    status = errormap.status_of(exc)
                    wait = self._wait_after_status(exc, tally, idempotent)
                    retry = wait is not None and self._fits(started, wait, tally.attempts)
                    if status == 429 and retry and wait is not None:
                        # Shared only when this call waits it out too: a wait beyond the budget is left
                        # to the caller's durable retry, and the others get Graph's own answer.
                        ticket.refused(wait)
                    elif status != 429:
                        ticket.answered()
                    if retry and wait is not None:
                        log.info(
                            "graph_retry",
                            operation=operation,
                            status=status,
                            wait_seconds=round(wait, 2),
                            attempt=tally.attempts,
                        )
                        if status != 429:
                            await self._sleep(wait)  # a 429's wait is the gate's (next turn)
                        continue
                    if status == 429 and wait is not None:
                        wait = max(wait, self.gate.closed_for(klass))
                    raise errormap.from_api_error(
                        exc, operation=operation, hide=hidden, retry_after=wait
                    ) from None
                except (TimeoutError, httpx.TimeoutException):
                    raise errormap.from_timeout(operation=operation, seconds=self._timeout) from None
                except httpx.TransportError as exc:
                    wait = self._policy.backoff(tally.attempts) if idempotent else None
                    if wait is not None and self._fits(started, wait, tally.attempts):
                        await self._pause(operation, None, wait, tally.attempts)
                        continue
                    raise errormap.from_transport(exc, operation=operation) from None
                except ClientAuthenticationError as exc:
                    raise errormap.from_credential(exc, operation=operation) from None
                except Exception as exc:  # an answer the SDK could not read
                    raise errormap.from_unreadable(exc, operation=operation) from None
        finally:
            ticket.release()
            self._metrics.record(
                operation,
                seconds=self._monotonic() - started,
                ok=tally.ok,
                attempts=tally.attempts,
                throttled=tally.throttled,
            )

    async def _wait_turn(
        self, ticket: GateTicket, klass: str, operation: str, started: float, tally: _Tally
    ) -> None:
        """Wait until this class may try again, within what is left of the budget; else Throttled."""
        left = self._policy.budget_seconds - (self._monotonic() - started)
        try:
            await ticket.wait(left)
        except (TimeoutError, GateClosed):
            tally.throttled += 1
            wait = max(self.gate.closed_for(klass), self._policy.base_backoff)
            raise Throttled(
                "Microsoft Graph is throttling these calls; this one did not get its turn in time",
                retry_after=wait,
                code="throttledWaiting",
                operation=operation,
            ) from None

    def _wait_after_status(self, exc: APIError, tally: _Tally, idempotent: bool) -> float | None:
        """The wait before another attempt, or None when this answer is not retryable at all."""
        status = errormap.status_of(exc)
        if status == 429:
            tally.throttled += 1
        elif not (idempotent and status in RETRYABLE_WHEN_IDEMPOTENT):
            return None
        header = errormap.retry_after_of(exc)
        # Retry-After: 0 would make a busy loop; fall back to the backoff then.
        return header if header else self._policy.backoff(tally.attempts)

    def _fits(self, started: float, wait: float, attempts: int) -> bool:
        if attempts >= self._policy.max_attempts:
            return False
        return (self._monotonic() - started) + wait <= self._policy.budget_seconds

    async def _pause(self, operation: str, status: int | None, wait: float, attempt: int) -> None:
        log.info(
            "graph_retry", operation=operation, status=status, wait_seconds=round(wait, 2), attempt=attempt
        )
        await self._sleep(wait)


@dataclass
class _Tally:
    attempts: int = 0
    throttled: int = 0
    ok: bool = False
