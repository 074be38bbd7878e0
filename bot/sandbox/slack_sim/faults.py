"""Injected Web API failures: errors, HTTP statuses, 429 with Retry-After, latency, dropped responses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fault:
    """What the next `times` calls to `method` ("*" for any) get instead of a normal answer.

    `apply=True` lets the call take effect first (the message is posted) and then fails the
    response: the case where Slack did the work but the app never heard. `drop=True` closes the
    connection without an answer.
    """

    method: str
    error: str | None = None
    status: int = 200
    retry_after: float | None = None
    times: int = 1
    latency: float = 0.0
    drop: bool = False
    apply: bool = False

    def __post_init__(self) -> None:
        if self.status == 429 and self.error is None:
            self.error = "ratelimited"
        if self.error == "ratelimited" and self.status == 200:
            self.status = 429
        if self.status >= 500 and self.error is None:
            self.error = "internal_error"

    @property
    def fails(self) -> bool:
        return self.error is not None or self.drop or self.status != 200

    def body(self) -> dict[str, object]:
        return {"ok": False, "error": self.error or "internal_error"}

    def headers(self) -> dict[str, str]:
        if self.status == 429:
            return {"Retry-After": str(int(self.retry_after if self.retry_after is not None else 1))}
        return {}


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def take(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.method in (method, "*"):
                fault.times -= 1
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()
