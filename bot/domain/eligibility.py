"""Who may get a Temporary Access Pass, and for how long: pure rules over facts gathered elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.directory import AuthMethod, DirectoryRole, TapInfo, TapPolicy
from bot.domain.tap_request import RequestKind


class CheckName(StrEnum):
    SLACK_MEMBER = "slack_member"
    ENTRA_ACCOUNT = "entra_account"
    NOT_PRIVILEGED = "not_privileged"
    TAP_POLICY = "tap_policy"
    NO_STRONG_METHOD = "no_strong_method"
    NO_VALID_PASS = "no_valid_pass"  # noqa: S105 - a name, not a secret
    RATE_LIMIT = "rate_limit"


CHECK_LABELS: dict[CheckName, str] = {
    CheckName.SLACK_MEMBER: "Full member of this Slack workspace",
    CheckName.ENTRA_ACCOUNT: "One enabled Entra member account for the Slack email",
    CheckName.NOT_PRIVILEGED: "No admin role (active or eligible), not in an excluded group",
    CheckName.TAP_POLICY: "Temporary Access Pass policy enabled and covers the user",
    CheckName.NO_STRONG_METHOD: "No security key or passkey registered yet",
    CheckName.NO_VALID_PASS: "No valid pass exists already",
    CheckName.RATE_LIMIT: "Within the request and pass limits",
}


@dataclass(frozen=True)
class CheckResult:
    name: CheckName
    passed: bool
    evidence: str  # for the helpdesk card and the audit; never a secret
    user_message: str | None = None  # what the person reads when this check refuses

    @property
    def label(self) -> str:
        return CHECK_LABELS[self.name]


def passed(name: CheckName, evidence: str) -> CheckResult:
    return CheckResult(name, True, evidence)


def refused(name: CheckName, evidence: str, user_message: str) -> CheckResult:
    return CheckResult(name, False, evidence, user_message)


# The evidence of a privilege check that passed only because the admin process is switched on: such a
# request needs two approvers and a cooling-off delay (bot/domain/admin_process.py).
ADMIN_PROCESS_EVIDENCE = "privileged, admin process"


def check_privilege(
    roles: Sequence[DirectoryRole], excluded_hits: set[str], *, allow_privileged: bool
) -> CheckResult:
    """Privileged accounts never get a pass from the bot unless the admin process is switched on."""
    if not roles and not excluded_hits:
        return passed(CheckName.NOT_PRIVILEGED, "no directory roles, no excluded groups")
    parts = [f"{r.display_name or r.template_id} ({'eligible' if r.eligible else 'active'})" for r in roles]
    parts += [f"excluded group {g}" for g in sorted(excluded_hits)]
    evidence = "; ".join(parts)
    if allow_privileged and not excluded_hits:
        return passed(CheckName.NOT_PRIVILEGED, f"{ADMIN_PROCESS_EVIDENCE}: {evidence}")
    return refused(
        CheckName.NOT_PRIVILEGED,
        evidence,
        "Your account has administrator rights, so for your safety I can't issue a pass for it here. "
        "Please ask the identity team to follow the admin recovery process.",
    )


def check_tap_policy(
    policy: TapPolicy, user_groups_in_scope: set[str], user_groups_excluded: set[str]
) -> CheckResult:
    if not policy.enabled:
        return refused(
            CheckName.TAP_POLICY,
            "Temporary Access Pass is disabled in the tenant policy",
            "Temporary Access Passes are switched off for our organisation, so I can't issue one. "
            "I've told the helpdesk; an administrator needs to enable them.",
        )
    in_scope = policy.include_all_users or bool(user_groups_in_scope)
    if not in_scope or user_groups_excluded:
        return refused(
            CheckName.TAP_POLICY,
            "user is outside the Temporary Access Pass policy's targets",
            "Your account isn't covered by our Temporary Access Pass policy yet, so a pass wouldn't work "
            "for you. I've told the helpdesk; an administrator needs to add you.",
        )
    return passed(CheckName.TAP_POLICY, "enabled; user in scope")


def check_no_strong_method(methods: Sequence[AuthMethod], kind: RequestKind) -> CheckResult:
    strong = [m for m in methods if m.kind.phishing_resistant]
    if not strong:
        return passed(CheckName.NO_STRONG_METHOD, "none registered")
    names = ", ".join(m.display_name or m.kind.value for m in strong)
    if kind is not RequestKind.ONBOARDING:
        return passed(CheckName.NO_STRONG_METHOD, f"has {names}; allowed for a {kind.value} request")
    return refused(
        CheckName.NO_STRONG_METHOD,
        f"already has {names}",
        f"You already have a phishing-resistant sign-in method ({names}), so you don't need a pass: "
        "sign in at the security info page with it and choose *Add sign-in method* to add another key. "
        "If your key is lost or stolen, use `/lostkey` instead.",
    )


def check_no_valid_pass(taps: Sequence[TapInfo]) -> CheckResult:
    live = [t for t in taps if t.is_usable or (t.usability_reason or "").lower() == "notyetvalid"]
    if not live:
        return passed(CheckName.NO_VALID_PASS, "none")
    return refused(
        CheckName.NO_VALID_PASS,
        f"a pass already exists (created {live[0].created:%Y-%m-%d %H:%M} UTC)"
        if live[0].created
        else "a pass exists",
        "You already have a valid Temporary Access Pass, so I won't create another one over it. "
        "Use the one you have, or wait until it expires and ask me again.",
    )


def check_rate_limits(
    requests_today: int, passes_today: int, *, max_requests: int, max_passes: int
) -> CheckResult:
    if passes_today >= max_passes:
        return refused(
            CheckName.RATE_LIMIT,
            f"{passes_today} pass(es) issued in the last 24 h (limit {max_passes})",
            "You've already had a pass in the last 24 hours, so I can't issue another one today. "
            "If you're stuck, ask the helpdesk for help.",
        )
    if requests_today >= max_requests:
        return refused(
            CheckName.RATE_LIMIT,
            f"{requests_today} requests in the last 24 h (limit {max_requests})",
            "You've asked several times today, so I've paused new requests for 24 hours and told the "
            "helpdesk. If you need help now, contact them directly.",
        )
    return passed(
        CheckName.RATE_LIMIT,
        f"{requests_today}/{max_requests} requests, {passes_today}/{max_passes} passes today",
    )


def configured_lifetime(kind: RequestKind, setup_minutes: int, today_minutes: int) -> int:
    """The lifetime to ask for, before `pass_lifetime` clamps it. A pass to set up a key lasts the short
    setup lifetime (KEYDESK_TAP_LIFETIME_MINUTES): the watch deletes it once the key is registered. A pass
    for today (key left at home) is what the person signs in with until they have their key back, so it
    lasts the day (KEYDESK_TODAY_PASS_MINUTES)."""
    return today_minutes if kind == RequestKind.FORGOTTEN else setup_minutes


def pass_lifetime(configured: int, policy: TapPolicy) -> int:
    """The configured lifetime, clamped to the tenant policy and to Graph's 10..43200 minutes."""
    low = max(10, policy.min_lifetime)
    high = min(43200, max(low, policy.max_lifetime))
    return min(max(configured, low), high)


def usable_once(configured: bool, policy: TapPolicy) -> bool:
    """One-time use unless configured otherwise and the tenant allows multi-use passes.

    The same for a pass for today: one sign-in gives a session (and single sign-on) that normally lasts
    the day, while a pass that works again and again for hours is a standing password anyone who saw it
    could use. Where a day needs several sign-ins (Windows, then the browser), KEYDESK_TAP_USABLE_ONCE=false
    makes passes multi-use, if the tenant's policy allows it."""
    return True if policy.usable_once_enforced else configured
