"""The simulated Entra tenant: directory, credentials and hardware token inventory in one object."""

from __future__ import annotations

from bot.clock import Clock, SystemClock

from .passkeys import PasskeyState


class Tenant(PasskeyState):
    """Seed it from tests and the demo; the HTTP routes read and change it like Graph would."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock or SystemClock())
