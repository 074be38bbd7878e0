"""Rate limits for the desk agents' endpoints: per source address, per pairing code, per agent.

Fixed windows counted in this process's memory on the runtime's clock: cheap, and enough to stop a
flood or a guessing run at one replica. With several replicas each counts on its own (the effective
limit is the limit times the replicas); pairing codes stay safe regardless (80 bits, one use, 10 min).
A refusal is a 429 with Retry-After; only the first refusal of a window is audited, so a flood cannot
flood the audit log too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.config import Settings
from bot.services import tap_common
from bot.services.desk_common import LinkRefused
from bot.services.runtime import Runtime

MAX_KEYS = 10_000  # windows kept per limiter before stale ones are dropped
GUESS_WINDOW = timedelta(hours=1)


@dataclass
class _Window:
    start: datetime
    count: int = 0
    refused: int = 0


@dataclass
class RateLimit:
    """At most `limit` hits per key in each `period`."""

    limit: int
    period: timedelta
    _windows: dict[str, _Window] = field(default_factory=dict)

    def hit(self, key: str, now: datetime) -> tuple[float | None, bool]:
        """(None, _) when allowed; else (seconds until the window ends, first refusal of the window)."""
        window = self._windows.get(key)
        if window is None or now >= window.start + self.period:
            if len(self._windows) >= MAX_KEYS:
                self._prune(now)
            window = self._windows[key] = _Window(now)
        window.count += 1
        if window.count <= self.limit:
            return None, False
        window.refused += 1
        left = (window.start + self.period - now).total_seconds()
        return max(1.0, float(math.ceil(left))), window.refused == 1

    def _prune(self, now: datetime) -> None:
        self._windows = {k: w for k, w in self._windows.items() if now < w.start + self.period}


@dataclass
class AgentLimits:
    """Every limit of /agent/v1/*, built once per app from the settings."""

    per_source: RateLimit
    pair_per_source: RateLimit
    pair_per_code: RateLimit
    polls_per_agent: RateLimit
    guess_threshold: int
    _guesses: set[str] = field(default_factory=set)
    _guess_window: _Window | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentLimits:
        ten_minutes, minute = timedelta(minutes=10), timedelta(minutes=1)
        return cls(
            per_source=RateLimit(settings.agent_requests_per_source_per_minute, minute),
            pair_per_source=RateLimit(settings.agent_pair_attempts_per_source, ten_minutes),
            pair_per_code=RateLimit(settings.agent_pair_attempts_per_code, ten_minutes),
            polls_per_agent=RateLimit(settings.agent_polls_per_minute, minute),
            guess_threshold=settings.agent_pair_failure_alert_threshold,
        )

    async def check(self, rt: Runtime, limit: RateLimit, scope: str, key: str, *, actor: str) -> None:
        """Count one hit; raise a 429 LinkRefused (audited once per window) when over the limit."""
        wait, first = limit.hit(key, rt.clock.now())
        if wait is None:
            return
        if first:
            await rt.audit.record(
                "desk.rate_limited",
                actor=actor,
                target=f"{scope}:{key[:64]}",
                outcome="refused",
                details={"scope": scope, "limit": limit.limit, "period_s": limit.period.total_seconds()},
            )
        raise LinkRefused(
            429,
            "rate_limited",
            f"Too many requests from this desk or address ({scope.replace('_', ' ')}). "
            f"Wait {wait:.0f} s before trying again.",
            retry_after=wait,
        )

    async def failed_guess(self, rt: Runtime, source: str) -> None:
        """Count a pairing attempt with a code that was never issued; alert once a window passes the
        threshold (someone may be guessing codes)."""
        now = rt.clock.now()
        window = self._guess_window
        if window is None or now >= window.start + GUESS_WINDOW:
            window = self._guess_window = _Window(now)
            self._guesses = set()
        window.count += 1
        self._guesses.add(source)
        if window.count != self.guess_threshold:
            return
        sources = ", ".join(sorted(self._guesses)[:5])
        await rt.audit.record(
            "desk.pair.guessing",
            actor="agent:pairing",
            outcome="refused",
            details={"failures": window.count, "window_minutes": 60, "sources": sorted(self._guesses)[:20]},
        )
        await tap_common.alert(
            rt,
            f"{window.count} desk pairing attempts in the last hour used codes that were never issued "
            f"(from {sources}). Someone may be guessing pairing codes; those addresses are being slowed down.",
            loud=True,
        )
