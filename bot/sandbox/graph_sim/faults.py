"""Fault injection: throttling, server errors, latency and responses lost after the work was done."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """A planned misbehaviour for requests whose method and version-less path match.

    `path` is a regular expression searched in the decoded path (anchor it with ^...$ to be exact).
    `status` 0 means no error response (latency only, or a drop). `times` <= 0 means every matching
    request. `drop_after_commit` performs the operation, then closes the connection without answering
    (it takes precedence over `status`); `drop_before_commit` closes it without doing anything.
    """

    method: str | None = None
    path: str = ".*"
    status: int = 429
    retry_after: float | None = None
    times: int = 1
    latency: float = 0.0
    drop_after_commit: bool = False
    code: str | None = None
    drop_before_commit: bool = False
    message: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    @property
    def is_error(self) -> bool:
        return self.status != 0 and not self.drop_after_commit and not self.drop_before_commit


def retry_after_header(seconds: float) -> str:
    """Whole seconds as Graph sends them; fractions are kept for tests that want to stay fast."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


@dataclass
class _Armed:
    fault: Fault
    remaining: int


class FaultBook:
    """Faults in the order they were added; each one is used `times` times (forever when <= 0)."""

    def __init__(self) -> None:
        self._armed: list[_Armed] = []

    def add(self, fault: Fault) -> None:
        self._armed.append(_Armed(fault, fault.times))

    def clear(self) -> None:
        self._armed.clear()

    def take(self, method: str, path: str) -> Fault | None:
        for armed in self._armed:
            if not armed.fault.matches(method, path):
                continue
            if armed.remaining > 0:
                armed.remaining -= 1
                if armed.remaining == 0:
                    self._armed.remove(armed)
            return armed.fault
        return None

    @property
    def pending(self) -> list[Fault]:
        return [armed.fault for armed in self._armed]
