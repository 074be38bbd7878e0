"""Asking for a Temporary Access Pass: who is asking, the automatic checks, the card and the manager."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.directory import DirectoryError
from bot.domain import admin_process
from bot.domain import eligibility as rules
from bot.domain.eligibility import CheckName, CheckResult
from bot.domain.tap_request import ManagerStatus, RequestKind, RequestState
from bot.logs import get_logger
from bot.services import identity, privileged, risk, tap_common
from bot.services.identity import Identity, IdentityRefused
from bot.services.runtime import Runtime
from bot.slack import tap_views
from bot.slack.messenger import SlackError
from bot.store import tap_repo
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)

DECISION_DEADLINE = "tap.decision_expired"
DIRECTORY_DOWN = (
    "I couldn't check your account just now because Microsoft Entra didn't answer. Nothing was requested "
    "and nothing changed. Please try again in a few minutes."
)
# Refusals the helpdesk hears about: an admin target, a misconfigured policy, someone hammering, or an
# account Entra ID Protection flags (its own alert, see risk.alert).
ALERT_ON = {CheckName.NOT_PRIVILEGED, CheckName.TAP_POLICY, CheckName.RATE_LIMIT, CheckName.USER_RISK}


@dataclass(frozen=True)
class Outcome:
    request_id: str | None
    refused: str | None = None  # the check or refusal reason, when nothing was filed


async def evaluate(rt: Runtime, who: Identity, kind: RequestKind) -> list[CheckResult]:
    """Run every automatic check against Entra and our own history. Directory errors propagate."""
    user_id = who.entra.id
    policy = await rt.directory.tap_policy()
    scope_groups = (
        set(policy.include_group_ids) | set(policy.exclude_group_ids) | set(rt.settings.excluded_group_ids)
    )
    roles, methods, taps, memberships, user_risk = await asyncio.gather(
        rt.directory.directory_roles(user_id),
        rt.directory.list_methods(user_id, hardware_oath=False),  # tokens are not phishing-resistant
        rt.directory.list_taps(user_id),
        rt.directory.member_of_groups(user_id, sorted(scope_groups)) if scope_groups else _no_groups(),
        risk.check(rt, user_id),
    )
    now = rt.clock.now()
    async with rt.db.read() as session:
        requests_today = await tap_repo.count_requests_since(session, who.slack.id, now - timedelta(days=1))
        passes_today = await tap_repo.count_issuances_since(
            session, now - timedelta(days=1), target_entra_id=user_id
        )
    excluded = memberships & set(rt.settings.excluded_group_ids)
    if kind is RequestKind.DESK_KEY:
        # A key prepared at a desk issues no pass: the TAP policy's scope and a live pass are beside the
        # point (Graph applies the FIDO2 policy itself when the key is registered, and the desk says so
        # if it refuses), and a person who already has a key may get another or a replacement
        # (check_no_strong_method lets every kind but ONBOARDING through).
        tap_policy = rules.passed(CheckName.TAP_POLICY, "not needed: a desk key issues no pass")
        no_pass = rules.passed(CheckName.NO_VALID_PASS, "not needed: a desk key issues no pass")
    else:
        tap_policy = rules.check_tap_policy(
            policy, memberships & set(policy.include_group_ids), memberships & set(policy.exclude_group_ids)
        )
        no_pass = rules.check_no_valid_pass(taps)
    return [
        rules.passed(CheckName.SLACK_MEMBER, f"{who.slack.name} ({who.slack.id}), team {who.slack.team_id}"),
        rules.passed(CheckName.ENTRA_ACCOUNT, f"{who.entra.user_principal_name} (enabled member)"),
        user_risk,
        # The admin process (two approvers, cooling-off) covers passes; a desk key is never for an admin.
        rules.check_privilege(
            roles,
            excluded,
            allow_privileged=rt.settings.allow_privileged_targets and kind is not RequestKind.DESK_KEY,
        ),
        tap_policy,
        rules.check_no_strong_method(methods, kind),
        no_pass,
        rules.check_rate_limits(
            requests_today,
            passes_today,
            max_requests=rt.settings.max_requests_per_user_per_day,
            max_passes=rt.settings.max_passes_per_user_per_day,
        ),
        rules.check_recent_methods(methods, now),
    ]


async def _no_groups() -> set[str]:
    return set()


def _profile(who: Identity, manager_name: str | None) -> dict[str, Any]:
    entra = who.entra
    return {
        "display_name": entra.display_name or who.slack.display,
        "upn": entra.user_principal_name,
        "department": entra.department,
        "job_title": entra.job_title,
        "manager": manager_name,
        "created": entra.created.isoformat() if entra.created else None,
    }


def _checks_json(checks: list[CheckResult]) -> list[dict[str, Any]]:
    return [
        {"name": c.name.value, "passed": c.passed, "evidence": c.evidence}
        | ({rules.STRONG_VERIFICATION_KEY: True} if c.strong_verification else {})
        for c in checks
    ]


async def request_pass(
    rt: Runtime, slack_user_id: str, *, kind: RequestKind = RequestKind.ONBOARDING
) -> Outcome:
    """The person asks for themselves: check everything, then file the request with the helpdesk."""
    async with rt.db.read() as session:
        existing = await tap_repo.open_for_target(session, slack_user_id)
    if existing is not None:
        await tap_common.tell(
            rt, slack_user_id, "You already have a request in progress; here's where it stands."
        )
        await tap_common.refresh(rt, existing.id, card=False)
        return Outcome(existing.id, refused="already_open")
    try:
        who = await identity.resolve(rt, slack_user_id)
        checks = await evaluate(rt, who, kind)
    except IdentityRefused as refusal:
        await _refuse_identity(rt, slack_user_id, refusal)
        return Outcome(None, refused=refusal.reason.value)
    except DirectoryError as exc:
        await _directory_down(rt, slack_user_id, exc)
        return Outcome(None, refused="directory_unavailable")
    failed = next((c for c in checks if not c.passed), None)
    if failed is not None:
        await _refuse_check(rt, who, failed, checks, kind)
        return Outcome(None, refused=failed.name.value)
    return await _file(rt, who, checks, kind, requester=slack_user_id)


async def file_request(
    rt: Runtime,
    who: Identity,
    checks: list[CheckResult],
    kind: RequestKind,
    *,
    requester: str,
    profile_extra: dict[str, Any] | None = None,
    on_filed: Callable[[AsyncSession, str], Awaitable[None]] | None = None,
) -> Outcome:
    """File a request whose checks already passed (the desk-key flow files its own this way).
    `on_filed(session, request_id)` runs in the transaction that creates the request, before its card."""
    return await _file(
        rt, who, checks, kind, requester=requester, profile_extra=profile_extra, on_filed=on_filed
    )


async def _file(
    rt: Runtime,
    who: Identity,
    checks: list[CheckResult],
    kind: RequestKind,
    *,
    requester: str,
    existing_id: str | None = None,
    profile_extra: dict[str, Any] | None = None,
    on_filed: Callable[[AsyncSession, str], Awaitable[None]] | None = None,
) -> Outcome:
    manager_entra, manager_slack, manager_name = await _find_manager(rt, who)
    if rt.settings.require_manager_confirmation:
        status = ManagerStatus.PENDING if manager_slack else ManagerStatus.UNAVAILABLE
    else:
        status = ManagerStatus.NOT_REQUIRED
    now = rt.clock.now()
    values: dict[str, Any] = {
        "target_entra_id": who.entra.id,
        "target_profile": _profile(who, manager_name) | (profile_extra or {}),
        "checks": _checks_json(checks),
        "manager_entra_id": manager_entra,
        "manager_slack_id": manager_slack,
        "manager_status": status.value,
        "decide_by": now + timedelta(minutes=rt.settings.request_ttl_minutes),
        "approvals_needed": admin_process.approvals_needed(checks),
    }
    async with rt.db.session() as session:
        if existing_id is None:
            request = TapRequest(
                id=str(uuid.uuid4()),
                kind=kind.value,
                state=RequestState.AWAITING_APPROVAL.value,
                version=0,
                created_at=now,
                target_slack_id=who.slack.id,
                requester_slack_id=requester,
                reveal_count=0,
                **values,
            )
            try:
                await tap_repo.add(session, request)
            except IntegrityError:
                return Outcome(None, refused="already_open")
            request_id = request.id
        else:
            request_id = existing_id
            if not await tap_repo.transition(
                session,
                existing_id,
                expected=RequestState.AWAITING_TARGET,
                to=RequestState.AWAITING_APPROVAL,
                **values,
            ):
                return Outcome(existing_id, refused="stale")
        await rt.deadlines.schedule(
            DECISION_DEADLINE,
            values["decide_by"],
            {"request_id": request_id},
            key=f"tap-decide:{request_id}",
            replace=True,
            session=session,
        )
        await rt.audit.record(
            "tap.request.created",
            actor=f"slack:{requester}",
            target=f"entra:{who.entra.id}",
            details={
                "request_id": request_id,
                "kind": kind.value,
                "checks": _checks_json(checks),
                "manager": status.value,
                "approvals_needed": values["approvals_needed"],
            },
            session=session,
        )
        if on_filed is not None:
            await on_filed(session, request_id)
    request_row = await tap_common.load(rt, request_id)
    assert request_row is not None
    await tap_common.post_card(rt, request_row)
    if privileged.applies(request_row):  # a privileged account: a security alert, loud
        await privileged.announce_filed(rt, request_row)
    await tap_common.refresh(rt, request_id, card=False)
    await _mail_the_person(rt, request_row)
    if status is ManagerStatus.PENDING and manager_slack:
        await _ask_manager(rt, request_row, manager_slack)
    return Outcome(request_id)


async def _mail_the_person(rt: Runtime, request: TapRequest) -> None:
    """Tell the person outside Slack that a request was filed in their name: a taken-over Slack account
    asking for itself is noticed in the mailbox it doesn't control (security.md case 40)."""
    what = (
        "a security key prepared by the helpdesk"
        if request.kind == RequestKind.DESK_KEY.value
        else "a Temporary Access Pass"
    )
    await tap_common.mail_person(
        rt,
        request,
        f"A request for {what} was filed for your account",
        f"A request for {what} for your account was just filed through keydesk and is waiting for the "
        "helpdesk's approval. If this wasn't you, contact the helpdesk immediately.",
        event="tap.request.mail_failed",
    )


async def _find_manager(rt: Runtime, who: Identity) -> tuple[str | None, str | None, str | None]:
    """The Entra manager, and their Slack account found by email (None when either is missing)."""
    try:
        manager = await rt.directory.get_manager(who.entra.id)
    except DirectoryError as exc:
        log.warning("tap.manager.lookup_failed", error=type(exc).__name__)
        return None, None, None
    if manager is None:
        return None, None, None
    slack_user = None
    for email in filter(None, (manager.mail, manager.user_principal_name)):
        try:
            slack_user = await rt.slack.user_by_email(email)
        except SlackError:
            slack_user = None
        if slack_user is not None and not slack_user.deleted and not slack_user.is_bot:
            break
        slack_user = None
    name = manager.display_name or manager.user_principal_name
    return manager.id, slack_user.id if slack_user else None, name


async def _ask_manager(rt: Runtime, request: TapRequest, manager_slack: str) -> None:
    text, blocks = tap_views.manager_question(request)
    try:
        posted = await rt.slack.post_dm(manager_slack, text, blocks)
    except SlackError as exc:
        log.warning("tap.manager.dm_failed", error=exc.code)
        return
    async with rt.db.session() as session:
        await tap_repo.set_fields(
            session, request.id, manager_message_channel=posted.channel, manager_message_ts=posted.ts
        )
        await rt.audit.record(
            "tap.manager.asked",
            actor="system",
            target=f"slack:{manager_slack}",
            details={"request_id": request.id},
            session=session,
        )


async def _refuse_identity(rt: Runtime, slack_user_id: str, refusal: IdentityRefused) -> None:
    await rt.audit.record(
        "tap.request.refused",
        actor=f"slack:{slack_user_id}",
        target=f"slack:{slack_user_id}",
        outcome="refused",
        details={"reason": refusal.reason.value, "detail": refusal.detail[:300]},
    )
    await tap_common.tell(rt, slack_user_id, refusal.user_message(rt.settings.support_contact))
    if refusal.reason in identity.ALERTING:
        await tap_common.alert(
            rt,
            f"<@{slack_user_id}> asked for a pass, but their identity didn't check out "
            f"({refusal.reason.value}: {refusal.detail[:200]}). Nothing was issued.",
            loud=True,
        )


async def _refuse_check(
    rt: Runtime, who: Identity, failed: CheckResult, checks: list[CheckResult], kind: RequestKind
) -> None:
    await rt.audit.record(
        "tap.request.refused",
        actor=f"slack:{who.slack.id}",
        target=f"entra:{who.entra.id}",
        outcome="refused",
        details={"reason": failed.name.value, "kind": kind.value, "checks": _checks_json(checks)},
    )
    await tap_common.tell(rt, who.slack.id, failed.user_message or "Sorry, I can't issue a pass for you.")
    if failed.name is CheckName.USER_RISK:
        await risk.alert(rt, failed, f"<@{who.slack.id}> ({who.entra.user_principal_name}) asked for a pass")
    elif failed.name in ALERT_ON:
        await tap_common.alert(
            rt,
            f"<@{who.slack.id}> ({who.entra.user_principal_name}) asked for a pass and was refused: "
            f"{failed.label.lower()} failed ({failed.evidence}).",
            loud=failed.name is not CheckName.TAP_POLICY,
        )


async def _directory_down(rt: Runtime, slack_user_id: str, exc: DirectoryError) -> None:
    log.warning("tap.request.directory_unavailable", error=type(exc).__name__)
    await rt.audit.record(
        "tap.request.failed",
        actor=f"slack:{slack_user_id}",
        target=f"slack:{slack_user_id}",
        outcome="failed",
        details={"reason": "directory_unavailable", "error": type(exc).__name__},
    )
    await tap_common.tell(rt, slack_user_id, DIRECTORY_DOWN)


# --- Opened by the helpdesk for someone else ----------------------------------------------------------
async def open_for_user(rt: Runtime, approver_slack_id: str, target_slack_id: str) -> str:
    """A helpdesk approver opens a request for a person, who must still confirm in their own DM."""
    from bot.services.approvals import authorise_approver

    _, problem = await authorise_approver(rt, approver_slack_id, None)
    if problem:
        await rt.audit.record(
            "tap.request.refused",
            actor=f"slack:{approver_slack_id}",
            target=f"slack:{target_slack_id}",
            outcome="refused",
            details={"reason": "not_authorised", "initiated_by_helpdesk": True},
        )
        return problem
    if target_slack_id == approver_slack_id:
        return "You can't open a request for yourself this way; DM me like everyone else."
    try:
        who = await identity.resolve(rt, target_slack_id)
    except IdentityRefused as refusal:
        await rt.audit.record(
            "tap.request.refused",
            actor=f"slack:{approver_slack_id}",
            target=f"slack:{target_slack_id}",
            outcome="refused",
            details={"reason": refusal.reason.value, "initiated_by_helpdesk": True},
        )
        return f"I can't open a request for <@{target_slack_id}>: {refusal.reason.value.replace('_', ' ')}."
    except DirectoryError:
        return "Microsoft Entra didn't answer, so I couldn't check that person. Try again shortly."
    now = rt.clock.now()
    request = TapRequest(
        id=str(uuid.uuid4()),
        kind=RequestKind.ONBOARDING.value,
        state=RequestState.AWAITING_TARGET.value,
        version=0,
        created_at=now,
        decide_by=now + timedelta(minutes=rt.settings.request_ttl_minutes),
        target_slack_id=target_slack_id,
        target_entra_id=who.entra.id,
        requester_slack_id=approver_slack_id,
        target_profile=_profile(who, None),
        checks=[],
        manager_status=ManagerStatus.NOT_REQUIRED.value,
        reveal_count=0,
    )
    async with rt.db.session() as session:
        try:
            await tap_repo.add(session, request)
        except IntegrityError:
            return f"<@{target_slack_id}> already has a request in progress."
        await rt.deadlines.schedule(
            DECISION_DEADLINE,
            request.decide_by,
            {"request_id": request.id},
            key=f"tap-decide:{request.id}",
            session=session,
        )
        await rt.audit.record(
            "tap.request.opened_for_user",
            actor=f"slack:{approver_slack_id}",
            target=f"entra:{who.entra.id}",
            details={"request_id": request.id},
            session=session,
        )
    await tap_common.refresh(rt, request.id, card=False)
    return f"I've asked <@{target_slack_id}> to confirm in their DM. The request appears here once they do."


async def target_answers(rt: Runtime, request_id: str, clicker: str, *, confirmed: bool) -> None:
    request = await tap_common.load(rt, request_id)
    if request is None or clicker != request.target_slack_id:
        await rt.audit.record(
            "tap.target.refused",
            actor=f"slack:{clicker}",
            target=f"request:{request_id}",
            outcome="refused",
            details={"reason": "not_the_target"},
        )
        await tap_common.tell(rt, clicker, "That request isn't yours to answer.")
        return
    if request.state != RequestState.AWAITING_TARGET:
        await tap_common.refresh(rt, request_id, card=False)
        return
    if not confirmed:
        async with rt.db.session() as session:
            await tap_repo.transition(
                session,
                request_id,
                expected=RequestState.AWAITING_TARGET,
                to=RequestState.CANCELLED,
                closed_at=rt.clock.now(),
            )
            await rt.audit.record(
                "tap.target.declined",
                actor=f"slack:{clicker}",
                target=f"entra:{request.target_entra_id}",
                details={"request_id": request_id, "opened_by": request.requester_slack_id},
                session=session,
            )
        await tap_common.refresh(rt, request_id, card=False)
        await tap_common.alert(
            rt,
            f"<@{clicker}> said they did *not* ask for the pass request "
            f"<@{request.requester_slack_id}> opened for them. It was cancelled.",
            loud=True,
        )
        return
    try:
        who = await identity.resolve(rt, clicker)
        checks = await evaluate(rt, who, RequestKind(request.kind))
    except IdentityRefused as refusal:
        await _cancel_opened(rt, request, refusal.reason.value)
        await _refuse_identity(rt, clicker, refusal)
        return
    except DirectoryError as exc:
        await _directory_down(rt, clicker, exc)
        return
    failed = next((c for c in checks if not c.passed), None)
    if failed is not None:
        await _cancel_opened(rt, request, failed.name.value)
        await _refuse_check(rt, who, failed, checks, RequestKind(request.kind))
        return
    await _file(
        rt,
        who,
        checks,
        RequestKind(request.kind),
        requester=request.requester_slack_id,
        existing_id=request.id,
    )


async def _cancel_opened(rt: Runtime, request: TapRequest, reason: str) -> None:
    async with rt.db.session() as session:
        await tap_repo.transition(
            session,
            request.id,
            expected=RequestState.AWAITING_TARGET,
            to=RequestState.CANCELLED,
            closed_at=rt.clock.now(),
        )
    await tap_common.refresh(rt, request.id, card=False)
    log.info("tap.request.cancelled", request=request.id, reason=reason)
