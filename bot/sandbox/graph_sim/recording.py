"""What the simulator received, for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request. `path` is decoded, '//' collapsed, without the version; `status` is what was
    answered (for a dropped response: what would have been answered, with `dropped` True)."""

    method: str
    path: str
    version: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any | None
    status: int
    dropped: bool = False
    target: str = field(default="", repr=False)  # the request target exactly as sent (still encoded)
    route: str = ""  # the route that served it, e.g. "GET /users/{user}"; "" when none matched
