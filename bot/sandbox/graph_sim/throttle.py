"""Rate throttling like Graph's: beyond `rate` requests a second (after a burst), 429 with Retry-After."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Throttle:
    """A token bucket over the requests whose method and version-less path match.

    Each admitted request takes a token; tokens come back at `rate` a second up to `burst`. A request
    that finds no token is refused; its Retry-After is the time until the next token, so a client
    that waits as told finds one (unless another client took it first, as with the real service).
    """

    rate: float
    method: str | None = None
    path: str = ".*"
    burst: int = 1
    monotonic: Callable[[], float] = time.monotonic
    admitted: int = 0
    refused: int = 0
    _tokens: float = field(init=False)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._tokens = float(self.burst)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    def take(self) -> float | None:
        """None when the request may proceed, else the seconds it should wait (Retry-After)."""
        now = self.monotonic()
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0 - 1e-9:  # float noise must not cost a whole extra round trip
            self._tokens = max(0.0, self._tokens - 1.0)
            self.admitted += 1
            return None
        self.refused += 1
        # Rounded up to 0.1 ms (float noise aside): a client that waits as told finds its token.
        return max(0.0001, math.ceil((1.0 - self._tokens) / self.rate * 10_000 - 1e-6) / 10_000)

    def lower_bound(self, requests: int) -> float:
        """The least time `requests` admitted requests can take: the burst is free, then 1/rate each."""
        return max(0, requests - self.burst) / self.rate
