"""The admin process for privileged accounts: two different approvers, then a cooling-off delay.

Pure rules, no I/O. A privileged target (an active or PIM-eligible directory role) gets a pass only when
KEYDESK_ALLOW_PRIVILEGED_TARGETS is on; members of the excluded (break-glass, VIP) groups never do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.eligibility import ADMIN_PROCESS_EVIDENCE, CheckName, CheckResult

ORDINARY_APPROVALS = 1
ADMIN_PROCESS_APPROVALS = 2


def approvals_needed(checks: Iterable[CheckResult]) -> int:
    """Two approvals when the privilege check passed only through the admin process, else one."""
    for check in checks:
        if (
            check.name is CheckName.NOT_PRIVILEGED
            and check.passed
            and check.evidence.startswith(ADMIN_PROCESS_EVIDENCE)
        ):
            return ADMIN_PROCESS_APPROVALS
    return ORDINARY_APPROVALS


@dataclass(frozen=True)
class Approver:
    slack_id: str
    entra_id: str | None


def same_person(first: Approver | None, candidate: Approver) -> bool:
    """The second approval must come from someone else: another Slack account AND another Entra account."""
    if first is None:
        return False
    if first.slack_id == candidate.slack_id:
        return True
    return first.entra_id is not None and first.entra_id == candidate.entra_id


@dataclass(frozen=True)
class Window:
    """When the pass of a twice-approved privileged request may be revealed, and until when."""

    reveal_not_before: datetime
    valid_until: datetime


def reveal_window(second_approved_at: datetime, cooling_off_minutes: int, validity_minutes: int) -> Window:
    """The cooling-off runs from the second approval; the approval's validity starts after it, so a
    cooling-off longer than the validity never leaves a pass that can't be revealed at all."""
    not_before = second_approved_at + timedelta(minutes=max(0, cooling_off_minutes))
    return Window(not_before, not_before + timedelta(minutes=validity_minutes))


def cooling_off_left(reveal_not_before: datetime | None, now: datetime) -> timedelta | None:
    """How long until the pass may be revealed; None when it may be now (or no cooling-off applies)."""
    if reveal_not_before is None or now >= reveal_not_before:
        return None
    return reveal_not_before - now
