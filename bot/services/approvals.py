"""The helpdesk's decision: who may approve, the verification policy, and one decision per request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from bot.directory import DirectoryError
from bot.domain.eligibility import needs_strong_verification
from bot.domain.tap_request import ManagerStatus, RequestKind, RequestState
from bot.logs import get_logger
from bot.services import identity, privileged, risk, tap_common
from bot.services.runtime import Runtime
from bot.store import tap_repo
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)

APPROVAL_DEADLINE = "tap.approval_expired"
PROOF_MAX_AGE = timedelta(minutes=15)  # security.md IDV-1: a verification older than this is stale
APPROVER_CACHE_SECONDS = 300.0
APPROVER_CHECK_DOWN = (
    "I couldn't check your approver rights in Entra just now. Nothing was decided; try again shortly."
)


@dataclass(frozen=True)
class Decision:
    ok: bool
    message: str  # what the approver reads


class Authority(Enum):
    """Which Entra groups give the right to a decision."""

    APPROVERS = "approvers"  # KEYDESK_APPROVER_GROUP_ID: ordinary requests, desks, keys
    PRIVILEGED = "privileged"  # KEYDESK_PRIVILEGED_APPROVER_GROUP_ID alone: approving a privileged account
    EITHER = "either"  # stopping a privileged request: anyone who could decide on it or on others

    def groups(self, rt: Runtime) -> list[str]:
        ordinary, privileged_group = rt.settings.approver_group_id, rt.settings.privileged_approver_group_id
        wanted = {
            Authority.APPROVERS: [ordinary],
            Authority.PRIVILEGED: [privileged_group],
            Authority.EITHER: [ordinary, privileged_group],
        }[self]
        return [group for group in wanted if group]


class ApproverCache:
    """Transitive group membership per (group, Entra user), remembered for at most five minutes."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[bool, float]] = {}

    async def is_member(self, rt: Runtime, entra_id: str, groups: list[str]) -> bool:
        """True when the user is in any of `groups` (none: False). One Graph call for the unknown ones."""
        now = time.monotonic()
        known = {g: hit[0] for g in groups if (hit := self._entries.get((g, entra_id))) and hit[1] > now}
        if any(known.values()):
            return True
        unknown = [g for g in groups if g not in known]
        if not unknown:
            return False
        found = await rt.directory.member_of_groups(entra_id, unknown)
        for group in unknown:
            self._entries[(group, entra_id)] = (group in found, now + APPROVER_CACHE_SECONDS)
        return bool(found & set(unknown))


approvers = ApproverCache()


async def authorise_approver(
    rt: Runtime,
    slack_user_id: str,
    request: TapRequest | None,
    authority: Authority = Authority.APPROVERS,
    doing: str | None = None,
) -> tuple[str | None, str | None]:
    """(approver's Entra id, None) when allowed, else (None, the reason to show them). `doing` names
    what they tried when it is not a decision ("take a setup"), for the refusal's wording."""
    try:
        who = await identity.resolve(rt, slack_user_id)
    except identity.IdentityRefused as refusal:
        return (
            None,
            f"I couldn't map you to your own work account ({refusal.reason.value}), "
            f"so you can't {doing or 'approve'}.",
        )
    except DirectoryError:
        return None, _check_down(doing)
    if request is not None:
        if slack_user_id == request.requester_slack_id or slack_user_id == request.target_slack_id:
            return None, "You can't approve a request you opened or one for yourself: another approver must."
        if who.entra.id == request.target_entra_id:
            return None, "You can't approve a pass for your own account."
    groups = authority.groups(rt)
    if authority is Authority.PRIVILEGED and not groups:
        return None, (
            "No privileged-approvers group is set (KEYDESK_PRIVILEGED_APPROVER_GROUP_ID), so nobody can "
            "approve a privileged account. Ask your Entra administrator."
        )
    try:
        allowed = await approvers.is_member(rt, who.entra.id, groups)
    except DirectoryError:
        return None, _check_down(doing)
    if not allowed:
        if authority is Authority.PRIVILEGED:
            return None, (
                "This is a privileged account: only members of the privileged-approvers group in Entra "
                "can approve it."
            )
        if doing:
            return None, f"Only members of the keydesk approver groups in Entra can {doing}."
        return None, "Only members of the approvers group in Entra can decide pass requests."
    return who.entra.id, None


def _check_down(doing: str | None) -> str:
    if doing:
        return f"I couldn't check your approver rights in Entra just now. Try again shortly: you need them to {doing}."
    return APPROVER_CHECK_DOWN


async def _refuse(
    rt: Runtime, request_id: str, actor: str, action: str, reason: str, message: str
) -> Decision:
    await rt.audit.record(
        action,
        actor=f"slack:{actor}",
        target=f"request:{request_id}",
        outcome="refused",
        details={"reason": reason},
    )
    return Decision(False, message)


def _stale_message(request: TapRequest) -> str:
    state = RequestState(request.state)
    who = f" by <@{request.decided_by_slack_id}>" if request.decided_by_slack_id else ""
    return f"This request is no longer waiting for a decision: it was {state.value.replace('_', ' ')}{who}."


async def approve(
    rt: Runtime, request_id: str, approver_slack_id: str, method: str | None, note: str, opened_at: datetime
) -> Decision:
    request = await tap_common.load(rt, request_id)
    if request is None:
        return await _refuse(
            rt,
            request_id,
            approver_slack_id,
            "tap.approve.refused",
            "unknown_request",
            "I can't find that request.",
        )
    now = rt.clock.now()
    if request.state != RequestState.AWAITING_APPROVAL:
        await tap_common.refresh(rt, request_id, dm=False)
        return await _refuse(
            rt, request_id, approver_slack_id, "tap.approve.refused", "stale", _stale_message(request)
        )
    if now >= request.decide_by:
        await expire_decision(rt, request_id)
        return await _refuse(
            rt,
            request_id,
            approver_slack_id,
            "tap.approve.refused",
            "expired",
            "This request expired before it was decided.",
        )
    authority = Authority.PRIVILEGED if privileged.applies(request) else Authority.APPROVERS
    approver_entra, problem = await authorise_approver(rt, approver_slack_id, request, authority)
    if problem:
        return await _refuse(
            rt, request_id, approver_slack_id, "tap.approve.refused", "not_authorised", problem
        )
    same = privileged.same_approver_problem(request, approver_slack_id, approver_entra)
    if same:  # a privileged account's second approval must come from someone else
        return await _refuse(rt, request_id, approver_slack_id, "tap.approve.refused", "same_approver", same)
    policy_problem = _verification_problem(rt, request, method, now - opened_at)
    policy_problem = policy_problem or privileged.verification_problem(rt, request, method)
    if policy_problem:
        return await _refuse(
            rt, request_id, approver_slack_id, "tap.approve.refused", "verification", policy_problem
        )
    limit_problem = await _limits_problem(rt, approver_slack_id, now)
    if limit_problem:
        return await _refuse(rt, request_id, approver_slack_id, "tap.approve.refused", "limit", limit_problem)
    risk_problem = await _risk_now(rt, request, approver_slack_id)
    if risk_problem:
        return await _refuse(rt, request_id, approver_slack_id, "tap.approve.refused", *risk_problem)
    if privileged.applies(request):  # admin process: two approvers, then a cooling-off
        assert approver_entra is not None
        step = await privileged.approve(rt, request, approver_slack_id, approver_entra, method, note, now)
        if step.refusal:
            return await _refuse(
                rt, request_id, approver_slack_id, "tap.approve.refused", step.refusal, step.message
            )
        return Decision(True, step.message)
    valid_until = now + timedelta(minutes=rt.settings.approval_validity_minutes)
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session,
            request_id,
            expected=RequestState.AWAITING_APPROVAL,
            to=RequestState.APPROVED,
            decided_by_slack_id=approver_slack_id,
            decided_by_entra_id=approver_entra,
            decided_at=now,
            verification_method=method,
            decision_note=note or None,
            approval_valid_until=valid_until,
        )
        if won:
            await rt.deadlines.cancel(f"tap-decide:{request_id}", session=session)
            await rt.deadlines.schedule(
                APPROVAL_DEADLINE,
                valid_until,
                {"request_id": request_id},
                key=f"tap-approval:{request_id}",
                replace=True,
                session=session,
            )
            await rt.audit.record(
                "tap.request.approved",
                actor=f"slack:{approver_slack_id}",
                target=f"entra:{request.target_entra_id}",
                details={
                    "request_id": request_id,
                    "verification": method,
                    "note": note[:500],
                    "manager": request.manager_status,
                    "approver_entra": approver_entra,
                },
                session=session,
            )
    if not won:
        latest = await tap_common.load(rt, request_id)
        return await _refuse(
            rt,
            request_id,
            approver_slack_id,
            "tap.approve.refused",
            "lost_race",
            _stale_message(latest or request),
        )
    await tap_common.refresh(rt, request_id)
    if request.kind == RequestKind.DESK_KEY:  # no pass: the desk prepares the key now
        from bot.services import desk_provisioning

        return Decision(True, await desk_provisioning.start(rt, request_id, approver_slack_id))
    return Decision(True, "Approved. The person can now reveal their pass in their DM with me.")


def _verification_problem(
    rt: Runtime, request: TapRequest, method: str | None, proof_age: timedelta
) -> str | None:
    choices = rt.settings.verification_choices
    if not method or method not in choices:
        return "Choose how you verified the person."
    if proof_age > PROOF_MAX_AGE or proof_age < timedelta(0):
        return "Your verification is more than 15 minutes old. Verify the person again, then approve."
    if request.manager_status == ManagerStatus.REJECTED:
        return "The manager said they did not expect this request. It can't be approved."
    confirmed = request.manager_status == ManagerStatus.CONFIRMED
    if method == "manager_confirmed" and not confirmed:
        return "The manager hasn't confirmed this request, so 'Manager confirmed' can't be used."
    if (
        rt.settings.require_manager_confirmation
        and not confirmed
        and method not in rt.settings.strong_verification_methods
    ):
        strong = ", ".join(choices.get(m, m) for m in rt.settings.strong_verification_methods)
        return f"Without the manager's confirmation, approve only after one of: {strong}."
    if needs_strong_verification(request.checks) and method not in rt.settings.strong_verification_methods:
        # IDV-5: whoever added a sign-in method in the last 24 h may be an attacker holding the account.
        strong = ", ".join(choices.get(m, m) for m in rt.settings.strong_verification_methods)
        if not strong:
            return (
                "A sign-in method was added to this account in the last 24 hours, and no verification "
                "method is set as strong (KEYDESK_STRONG_VERIFICATION_METHODS), so it can't be approved."
            )
        return (
            "A sign-in method was added to this account in the last 24 hours (see the checks on the "
            f"card), so verify the person yourself before approving (one of: {strong}). "
            "The manager's confirmation isn't enough here."
        )
    return None


async def _risk_now(rt: Runtime, request: TapRequest, approver_slack_id: str) -> tuple[str, str] | None:
    """IDV-5 at the moment of the decision: Entra ID Protection may have flagged the account since the
    request was filed. (audit reason, what the approver reads) when it can't be approved."""
    try:
        result = await risk.check(rt, request.target_entra_id)
    except DirectoryError:
        return "risk_check_down", (
            "I couldn't check the account's risk in Entra just now. Nothing was decided; try again shortly."
        )
    if result.passed:
        return None
    if risk.unavailable(result):
        return "user_risk", f"The risk check can't run ({result.evidence}), so this can't be approved."
    asked = f"<@{approver_slack_id}> was about to approve <@{request.target_slack_id}>'s request"
    await risk.alert(rt, result, asked, thread_of=request, now=True)
    return "user_risk", (
        f"Entra ID Protection flags this account now ({result.evidence}), so it can't be approved. "
        "The helpdesk channel has been alerted."
    )


async def _limits_problem(rt: Runtime, approver_slack_id: str, now: datetime) -> str | None:
    hour_ago = now - timedelta(hours=1)
    async with rt.db.read() as session:
        mine = await tap_repo.count_approvals_since(session, approver_slack_id, hour_ago)
        # The breaker counts every credential keydesk issued: passes, and keys prepared at a desk.
        tenant = await tap_repo.count_issuances_since(session, hour_ago)
        tenant += await tap_repo.count_desk_keys_since(session, hour_ago)
    if mine >= rt.settings.max_approvals_per_approver_per_hour:
        await tap_common.alert(
            rt,
            f"<@{approver_slack_id}> reached the limit of {mine} approvals in an hour; further approvals "
            "are paused for them.",
            loud=True,
        )
        return f"You've approved {mine} passes in the last hour, the most allowed. Ask another approver."
    if tenant >= rt.settings.max_passes_per_hour:
        await tap_common.alert(
            rt,
            f"{tenant} passes and desk keys were issued in the last hour: issuance is paused "
            "(circuit breaker).",
            loud=True,
        )
        return (
            "Issuance is paused: too many passes and keys were issued in the last hour. Security has been "
            "alerted."
        )
    return None


async def deny(rt: Runtime, request_id: str, approver_slack_id: str, reason: str) -> Decision:
    request = await tap_common.load(rt, request_id)
    if request is None:
        return Decision(False, "I can't find that request.")
    deniable = privileged.deniable_states(request)  # a privileged request: until its pass is revealed
    if request.state not in deniable:
        await tap_common.refresh(rt, request_id, dm=False)
        return await _refuse(
            rt, request_id, approver_slack_id, "tap.deny.refused", "stale", _stale_message(request)
        )
    authority = Authority.EITHER if privileged.applies(request) else Authority.APPROVERS
    approver_entra, problem = await authorise_approver(rt, approver_slack_id, None, authority)
    if problem:
        return await _refuse(rt, request_id, approver_slack_id, "tap.deny.refused", "not_authorised", problem)
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session,
            request_id,
            expected=deniable,
            to=RequestState.DENIED,
            decided_by_slack_id=approver_slack_id,
            decided_by_entra_id=approver_entra,
            decided_at=now,
            decision_note=reason or None,
            closed_at=now,
        )
        if won:
            await rt.deadlines.cancel(f"tap-decide:{request_id}", session=session)
            if privileged.applies(request):
                await privileged.cancel_deadlines(rt, request_id, session)
            await rt.audit.record(
                "tap.request.denied",
                actor=f"slack:{approver_slack_id}",
                target=f"entra:{request.target_entra_id}",
                details={"request_id": request_id, "reason": reason[:500], "was": request.state},
                session=session,
            )
    if not won:
        latest = await tap_common.load(rt, request_id)
        return Decision(False, _stale_message(latest or request))
    await tap_common.refresh(rt, request_id)
    return Decision(True, "Denied. The person has been told to contact the helpdesk.")


async def expire_decision(rt: Runtime, request_id: str) -> bool:
    """Deadline: nobody decided in time."""
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session,
            request_id,
            expected=[RequestState.AWAITING_APPROVAL, RequestState.AWAITING_TARGET],
            to=RequestState.EXPIRED,
            closed_at=now,
        )
        if won:
            await rt.audit.record(
                "tap.request.expired",
                actor="system",
                target=f"request:{request_id}",
                details={"request_id": request_id, "stage": "decision"},
                session=session,
            )
    if won:
        await tap_common.refresh(rt, request_id)
    return won


async def expire_approval(rt: Runtime, request_id: str) -> bool:
    """Deadline: approved, but the pass was never revealed in time."""
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session, request_id, expected=RequestState.APPROVED, to=RequestState.EXPIRED, closed_at=now
        )
        if won:
            await rt.audit.record(
                "tap.request.expired",
                actor="system",
                target=f"request:{request_id}",
                details={"request_id": request_id, "stage": "approval"},
                session=session,
            )
    if won:
        await tap_common.refresh(rt, request_id)
    return won
