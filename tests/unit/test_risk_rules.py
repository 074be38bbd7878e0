"""IDV-5's pure rules: Entra ID Protection's verdict, and sign-in methods added in the last 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.directory import AuthMethod, MethodKind
from bot.directory.mapping import to_user_risk
from bot.directory.types import UserRisk
from bot.domain.eligibility import (
    RISK_UNAVAILABLE,
    CheckName,
    check_recent_methods,
    check_user_risk,
    needs_strong_verification,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SUPPORT = "#it-help"


def risk(state: str | None, level: str | None = "high") -> UserRisk:
    return UserRisk("u1", state, level, "none", datetime(2026, 12, 6, 9, 30, tzinfo=UTC))


def method(kind: MethodKind, age: timedelta | None, name: str | None = None) -> AuthMethod:
    return AuthMethod("m1", kind, name, None if age is None else NOW - age)


@pytest.mark.parametrize("state", ["atRisk", "confirmedCompromised", "ATRISK"])
@pytest.mark.parametrize("level", ["low", "medium", "high", "hidden", None])
def test_at_risk_and_compromised_refuse_at_any_level(state: str, level: str | None) -> None:
    result = check_user_risk(risk(state, level), available=True, required=False, support=SUPPORT)
    assert not result.passed and result.name is CheckName.USER_RISK
    assert f"riskState {state}" in result.evidence and "last updated 2026-12-06 09:30 UTC" in result.evidence
    assert (
        result.user_message
        == f"I can't start this from Slack right now; please contact the helpdesk: {SUPPORT}."
    )
    assert "risk" not in (result.user_message or "").lower()


@pytest.mark.parametrize(
    "state", ["none", "remediated", "dismissed", "confirmedSafe", "unknownFutureValue", None]
)
def test_other_states_pass_with_the_record_as_evidence(state: str | None) -> None:
    result = check_user_risk(risk(state, "none"), available=True, required=True, support=SUPPORT)
    assert result.passed and f"riskState {state or 'unknown'}, riskLevel none" in result.evidence


def test_no_record_passes() -> None:
    result = check_user_risk(None, available=True, required=True, support=SUPPORT)
    assert result.passed and result.evidence == "no risk record"


def test_unreadable_risk_passes_only_when_not_required() -> None:
    lenient = check_user_risk(None, available=False, required=False, support=SUPPORT)
    assert lenient.passed and lenient.evidence == RISK_UNAVAILABLE
    strict = check_user_risk(None, available=False, required=True, support=SUPPORT)
    assert not strict.passed and strict.evidence.startswith(RISK_UNAVAILABLE)
    assert strict.user_message and SUPPORT in strict.user_message


def test_mapping_reads_graphs_risky_user() -> None:
    found = to_user_risk(
        {
            "id": "u1",
            "isDeleted": False,
            "isProcessing": False,
            "riskLastUpdatedDateTime": "2026-12-06T09:30:00.1234567Z",
            "riskLevel": "high",
            "riskState": "confirmedCompromised",
            "riskDetail": "adminConfirmedUserCompromised",
            "userDisplayName": "Ada",
            "userPrincipalName": "ada@example.com",
        }
    )
    assert found.at_risk and found.risk_detail == "adminConfirmedUserCompromised"
    assert found.last_updated is not None and found.last_updated.hour == 9
    assert not to_user_risk({"id": "u1", "riskState": 7}).at_risk  # a mistyped field reads as unknown


def test_a_method_added_within_24_hours_passes_but_asks_for_strong_verification() -> None:
    methods = [
        method(MethodKind.PASSWORD, timedelta(minutes=5)),  # a password change is not a new method
        method(MethodKind.AUTHENTICATOR, timedelta(hours=3, minutes=10), "Pixel 8"),
        method(MethodKind.PHONE, timedelta(minutes=20), "mobile"),
        method(MethodKind.FIDO2, timedelta(hours=30), "Old key"),
    ]
    result = check_recent_methods(methods, NOW)
    assert result.passed and result.strong_verification and result.name is CheckName.RECENT_METHOD
    assert "Microsoft Authenticator (Pixel 8) added 3 h ago" in result.evidence
    assert "Phone (SMS or call) (mobile) added 20 min ago" in result.evidence
    assert "Old key" not in result.evidence and "Password" not in result.evidence


@pytest.mark.parametrize(
    ("age", "recent"),
    [
        (timedelta(hours=23, minutes=59), True),
        (timedelta(hours=24), False),
        (timedelta(hours=30), False),
        (timedelta(minutes=-5), True),  # Graph's clock a little ahead of ours
        (None, False),  # no creation time: nothing to judge
    ],
)
def test_the_24_hour_window(age: timedelta | None, recent: bool) -> None:
    result = check_recent_methods([method(MethodKind.WINDOWS_HELLO, age, "LAPTOP-1")], NOW)
    assert result.passed
    assert result.strong_verification is recent
    assert (result.evidence == "none") is not recent


def test_needs_strong_verification_reads_the_stored_checks() -> None:
    assert needs_strong_verification([{"name": "recent_method", "passed": True, "strong_verification": True}])
    assert not needs_strong_verification([{"name": "recent_method", "passed": True, "evidence": "none"}])
    assert not needs_strong_verification(None)
    assert not needs_strong_verification([])
