"""The simulated Entra tenant: directory, credentials and hardware token inventory in one object."""

from __future__ import annotations

from datetime import datetime

from bot.clock import Clock, SystemClock

from .passkeys import PasskeyState
from .risk import RISK_LEVELS, RISK_STATES, RiskyUserRecord


class Tenant(PasskeyState):
    """Seed it from tests and the demo; the HTTP routes read and change it like Graph would."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock or SystemClock())
        # Entra ID Protection: records of users it flagged (by lower-case object id), and whether the
        # tenant has Entra ID P2 (without it, riskyUsers answers 403).
        self.risky_users: dict[str, RiskyUserRecord] = {}
        self.identity_protection_licensed = True

    def set_user_risk(
        self,
        user_id: str,
        state: str = "atRisk",
        level: str = "high",
        *,
        detail: str = "none",
        updated: datetime | None = None,
    ) -> RiskyUserRecord:
        """Flag a user (or change their record) as Identity Protection would."""
        if user_id not in self.users:
            raise KeyError(f"no user {user_id}")
        if state not in RISK_STATES or level not in RISK_LEVELS:
            raise ValueError(f"riskState must be one of {RISK_STATES}, riskLevel one of {RISK_LEVELS}")
        record = RiskyUserRecord(user_id, state, level, detail, updated or self.clock.now())
        self.risky_users[user_id.lower()] = record
        return record
