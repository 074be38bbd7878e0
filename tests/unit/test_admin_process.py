"""The admin process's pure rules: who needs two approvals, who counts as a different approver, when to reveal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.directory import DirectoryRole
from bot.domain import admin_process as ap
from bot.domain.eligibility import CheckName, check_privilege, passed

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ADMIN = DirectoryRole(
    template_id="62e90394-69f5-4237-9190-012177145e10", display_name="Global Administrator", eligible=False
)


def test_a_privileged_account_let_through_by_the_admin_process_needs_two_approvals() -> None:
    check = check_privilege([ADMIN], set(), allow_privileged=True)
    assert check.passed
    assert ap.approvals_needed([check]) == 2


def test_ordinary_accounts_need_one_approval() -> None:
    assert ap.approvals_needed([check_privilege([], set(), allow_privileged=True)]) == 1
    assert ap.approvals_needed([passed(CheckName.RATE_LIMIT, "privileged, admin process: spoof")]) == 1
    assert ap.approvals_needed([]) == 1


@pytest.mark.parametrize("allow", [True, False])
def test_excluded_groups_are_refused_whatever_the_setting(allow: bool) -> None:
    check = check_privilege([ADMIN], {"break-glass"}, allow_privileged=allow)
    assert not check.passed
    assert not check_privilege([], {"break-glass"}, allow_privileged=allow).passed


def test_without_the_setting_privileged_accounts_are_refused() -> None:
    assert not check_privilege([ADMIN], set(), allow_privileged=False).passed


@pytest.mark.parametrize(
    ("first", "candidate", "same"),
    [
        (None, ap.Approver("U1", "e1"), False),
        (ap.Approver("U1", "e1"), ap.Approver("U1", "e1"), True),
        (ap.Approver("U1", "e1"), ap.Approver("U1", "e2"), True),  # same Slack account
        (ap.Approver("U1", "e1"), ap.Approver("U2", "e1"), True),  # two Slack accounts, one person in Entra
        (ap.Approver("U1", "e1"), ap.Approver("U2", "e2"), False),
        (ap.Approver("U1", None), ap.Approver("U2", "e2"), False),
    ],
)
def test_the_second_approver_must_be_someone_else(
    first: ap.Approver | None, candidate: ap.Approver, same: bool
) -> None:
    assert ap.same_person(first, candidate) is same


def test_the_cooling_off_runs_from_the_second_approval_and_the_validity_after_it() -> None:
    window = ap.reveal_window(NOW, cooling_off_minutes=60, validity_minutes=30)
    assert window.reveal_not_before == NOW + timedelta(minutes=60)
    assert window.valid_until == NOW + timedelta(minutes=90)
    assert ap.reveal_window(NOW, 0, 30).reveal_not_before == NOW


def test_cooling_off_left() -> None:
    not_before = NOW + timedelta(minutes=60)
    assert ap.cooling_off_left(not_before, NOW) == timedelta(minutes=60)
    assert ap.cooling_off_left(not_before, not_before) is None
    assert ap.cooling_off_left(None, NOW) is None
