"""The Temporary Access Pass request: its states and the only transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class RequestKind(StrEnum):
    ONBOARDING = "onboarding"  # first key: the user has no phishing-resistant method yet
    REPLACEMENT = "replacement"  # the user lost their last key (lost-key flow)
    FORGOTTEN = "forgotten"  # key left at home: a pass for today (KEYDESK_TODAY_PASS_MINUTES), no key setup
    # A security key prepared for the person at a desk agent (bot/services/desk_provisioning.py). No pass:
    # APPROVED -> ISSUING (the desk is creating the passkey) -> ISSUED (registered in Entra, the key is
    # being finished) -> COMPLETED; a failure before registration ends in CANCELLED.
    DESK_KEY = "desk_key"


class RequestState(StrEnum):
    AWAITING_TARGET = "awaiting_target"  # opened by the helpdesk; the person must confirm in their own DM
    AWAITING_APPROVAL = "awaiting_approval"  # card in the helpdesk channel
    APPROVED = "approved"  # the person may reveal the pass until approval_valid_until
    ISSUING = "issuing"  # a Reveal click is creating the pass in Entra right now
    ISSUED = "issued"  # the pass exists and was shown
    COMPLETED = "completed"  # a key was registered and the pass deleted
    DENIED = "denied"
    EXPIRED = "expired"  # nobody decided in time, or the approval ran out unrevealed
    PASS_EXPIRED = "pass_expired"  # noqa: S105 - a name, not a secret  # the pass ran out before a key was registered
    CANCELLED = "cancelled"  # the person said no, or withdrew
    REVOKED = "revoked"  # "this looks wrong": pass deleted, sessions revoked


OPEN_STATES = frozenset(
    {
        RequestState.AWAITING_TARGET,
        RequestState.AWAITING_APPROVAL,
        RequestState.APPROVED,
        RequestState.ISSUING,
        RequestState.ISSUED,
    }
)
FINAL_STATES = frozenset(set(RequestState) - OPEN_STATES)

ALLOWED: dict[RequestState, frozenset[RequestState]] = {
    RequestState.AWAITING_TARGET: frozenset(
        {RequestState.AWAITING_APPROVAL, RequestState.CANCELLED, RequestState.EXPIRED, RequestState.DENIED}
    ),
    RequestState.AWAITING_APPROVAL: frozenset(
        {
            RequestState.APPROVED,
            RequestState.DENIED,
            RequestState.EXPIRED,
            RequestState.CANCELLED,
            RequestState.REVOKED,
        }
    ),
    # APPROVED -> DENIED: only a privileged account's request, stopped by an approver before its pass was
    # revealed (during or after the cooling-off; bot/services/privileged.py).
    RequestState.APPROVED: frozenset(
        {
            RequestState.ISSUING,
            RequestState.EXPIRED,
            RequestState.CANCELLED,
            RequestState.REVOKED,
            RequestState.DENIED,
        }
    ),
    # ISSUING -> APPROVED: the pass was not shown (crash, Slack failure); it was deleted, reveal again.
    # ISSUING -> CANCELLED: only desk keys (the desk or Graph failed before anything was registered).
    RequestState.ISSUING: frozenset(
        {RequestState.ISSUED, RequestState.APPROVED, RequestState.REVOKED, RequestState.CANCELLED}
    ),
    # ISSUED -> ISSUING: revealing again within the approval's validity replaces the pass.
    RequestState.ISSUED: frozenset(
        {
            RequestState.ISSUING,
            RequestState.COMPLETED,
            RequestState.PASS_EXPIRED,
            RequestState.REVOKED,
            RequestState.CANCELLED,
        }
    ),
    # COMPLETED -> REVOKED: only desk keys, when the manager says the registered key looks wrong
    # (bot/services/desk_notices.py); a completed pass request has nothing left to revoke.
    RequestState.COMPLETED: frozenset({RequestState.REVOKED}),
}


class InvalidTransition(Exception):
    def __init__(self, current: RequestState, wanted: RequestState) -> None:
        super().__init__(f"cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


def check_transition(current: RequestState, wanted: RequestState) -> None:
    if wanted not in ALLOWED.get(current, frozenset()):
        raise InvalidTransition(current, wanted)


class ManagerStatus(StrEnum):
    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"  # no manager in Entra, or not reachable in Slack
