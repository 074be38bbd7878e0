"""Per-operation counters and latency sums for the gateway (readiness page, bench)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OperationStats:
    calls: int = 0
    failures: int = 0
    attempts: int = 0  # HTTP attempts, retries included
    throttled: int = 0  # 429 answers seen
    total_seconds: float = 0.0

    @property
    def mean_seconds(self) -> float:
        return self.total_seconds / self.calls if self.calls else 0.0


class DirectoryMetrics:
    """Mutable tally; `snapshot()` hands out frozen copies."""

    def __init__(self) -> None:
        self._stats: dict[str, OperationStats] = {}

    def record(self, operation: str, *, seconds: float, ok: bool, attempts: int, throttled: int) -> None:
        old = self._stats.get(operation, OperationStats())
        self._stats[operation] = OperationStats(
            calls=old.calls + 1,
            failures=old.failures + (0 if ok else 1),
            attempts=old.attempts + attempts,
            throttled=old.throttled + throttled,
            total_seconds=old.total_seconds + seconds,
        )

    def snapshot(self) -> dict[str, OperationStats]:
        return dict(self._stats)

    def __getitem__(self, operation: str) -> OperationStats:
        return self._stats.get(operation, OperationStats())
