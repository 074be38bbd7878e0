"""Slack-shaped identifiers: channel and view ids, message timestamps, trigger ids, hashes."""

from __future__ import annotations

import itertools
import secrets
import string
import uuid

from bot.clock import Clock

_ALPHABET = string.ascii_uppercase + string.digits


class IdMaker:
    """Unique ids in Slack's formats; message `ts` values are unique and strictly increasing."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counter = itertools.count(1)
        self._last_ts_us = 0

    def _suffix(self, width: int = 9) -> str:
        n = next(self._counter)
        digits = ""
        while n:
            n, rem = divmod(n, len(_ALPHABET))
            digits = _ALPHABET[rem] + digits
        return digits.rjust(width - 3, "0") + "".join(secrets.choice(_ALPHABET) for _ in range(3))

    def conversation(self, prefix: str = "D") -> str:
        return prefix + self._suffix()

    def view(self) -> str:
        return "V" + self._suffix()

    def event(self) -> str:
        return "Ev" + self._suffix(10)

    def envelope(self) -> str:
        return str(uuid.uuid4())

    def block(self) -> str:
        return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(5))

    def trigger(self) -> str:
        # Slack's documented shape: "132456.7890123.abcdef".
        head = f"{next(self._counter)}{secrets.randbelow(10**6):06d}"
        return f"{head}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"

    def hash(self) -> str:
        return f"{int(self._clock.now().timestamp())}.{secrets.token_hex(4)}"

    def ts(self) -> str:
        now_us = int(self._clock.now().timestamp() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def secret(self) -> str:
        return secrets.token_urlsafe(24)
