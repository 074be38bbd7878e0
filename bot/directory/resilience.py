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
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError

from bot.directory import errormap
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


class CallRunner:
    def __init__(
        self,
        *,
        timeout: float,
        policy: RetryPolicy,
        metrics: DirectoryMetrics,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._policy = policy
        self._metrics = metrics
        self._sleep = sleep
        self._monotonic = monotonic

    async def run(
        self,
        operation: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        idempotent: bool,
        hide: Iterable[str] = (),
    ) -> T:
        """Run `attempt` (one SDK call) until it succeeds or must give up; raise our errors only.

        `hide` lists values (a verification code) that must be masked if Graph echoes them back.
        """
        hidden = tuple(hide)
        started = self._monotonic()
        tally = _Tally()
        try:
            while True:
                tally.attempts += 1
                try:
                    async with asyncio.timeout(self._timeout):
                        result = await attempt()
                    tally.ok = True
                    return result
                except APIError as exc:
                    wait = self._wait_after_status(exc, tally, idempotent)
                    if wait is not None and self._fits(started, wait, tally.attempts):
                        await self._pause(operation, errormap.status_of(exc), wait, tally.attempts)
                        continue
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
            self._metrics.record(
                operation,
                seconds=self._monotonic() - started,
                ok=tally.ok,
                attempts=tally.attempts,
                throttled=tally.throttled,
            )

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
