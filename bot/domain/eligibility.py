"""Who may get a Temporary Access Pass, and for how long: pure rules over facts gathered elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.directory import AuthMethod, DirectoryRole, MethodKind, TapInfo, TapPolicy
from bot.directory.types import UserRisk
from bot.domain.method_names import METHOD_LABELS
from bot.domain.tap_request import RequestKind


class CheckName(StrEnum):
    SLACK_MEMBER = "slack_member"
    ENTRA_ACCOUNT = "entra_account"
    NOT_PRIVILEGED = "not_privileged"
    TAP_POLICY = "tap_policy"
    NO_STRONG_METHOD = "no_strong_method"
    NO_VALID_PASS = "no_valid_pass"  # noqa: S105 - a name, not a secret
    RATE_LIMIT = "rate_limit"
    USER_RISK = "user_risk"
    RECENT_METHOD = "recent_method"


CHECK_LABELS: dict[CheckName, str] = {
    CheckName.SLACK_MEMBER: "Full member of this Slack workspace",
    CheckName.ENTRA_ACCOUNT: "One enabled Entra member account for the Slack email",
    CheckName.NOT_PRIVILEGED: "No admin role (active or eligible), not in an excluded group",
    CheckName.TAP_POLICY: "Temporary Access Pass policy enabled and covers the user",
    CheckName.NO_STRONG_METHOD: "No security key or passkey registered yet",
    CheckName.NO_VALID_PASS: "No valid pass exists already",
    CheckName.RATE_LIMIT: "Within the request and pass limits",
    CheckName.USER_RISK: "Not flagged at risk by Entra ID Protection",
    CheckName.RECENT_METHOD: "No sign-in method added in the last 24 h",
}


@dataclass(frozen=True)
class CheckResult:
    name: CheckName
    passed: bool
    evidence: str  # for the helpdesk card and the audit; never a secret
    user_message: str | None = None  # what the person reads when this check refuses
    # Passed, but approval then needs a strong verification (in person, photo ID): not the manager's click.
    strong_verification: bool = False

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


# --- IDV-5: a risky account, or a sign-in method added in the last 24 hours ---------------------------
RECENT_METHOD_WINDOW = timedelta(hours=24)
RISK_UNAVAILABLE = "Identity Protection not available (no P2 licence or no IdentityRiskyUser.Read.All)"
STRONG_VERIFICATION_KEY = "strong_verification"  # marks a stored check (request.checks) that needs one


def contact_helpdesk(support: str) -> str:
    """Deliberately vague: a possible attacker must not learn that risk detection stopped them."""
    return f"I can't start this from Slack right now; please contact the helpdesk: {support}."


def check_user_risk(risk: UserRisk | None, *, available: bool, required: bool, support: str) -> CheckResult:
    """Entra ID Protection's verdict. `available` False: Graph refused the read (403: no Entra ID P2 or
    no IdentityRiskyUser.Read.All); that passes unless the check is required (fail closed)."""
    if not available:
        if required:
            return refused(
                CheckName.USER_RISK,
                f"{RISK_UNAVAILABLE}; KEYDESK_RISK_CHECK=required",
                contact_helpdesk(support),
            )
        return passed(CheckName.USER_RISK, RISK_UNAVAILABLE)
    if risk is None:
        return passed(CheckName.USER_RISK, "no risk record")
    updated = f"{risk.last_updated:%Y-%m-%d %H:%M} UTC" if risk.last_updated else "unknown"
    evidence = (
        f"riskState {risk.risk_state or 'unknown'}, riskLevel {risk.risk_level or 'unknown'}, "
        f"last updated {updated}"
    )
    if risk.at_risk:
        return refused(CheckName.USER_RISK, evidence, contact_helpdesk(support))
    return passed(CheckName.USER_RISK, evidence)


def check_recent_methods(methods: Sequence[AuthMethod], now: datetime) -> CheckResult:
    """A method other than the password added in the last 24 h doesn't refuse (new hires get a phone on
    day one), but whoever added it may be the attacker: approval then needs a strong verification.
    A method without a creation time (Graph omits it for some kinds) can't be judged and is left out."""
    recent = [
        m
        for m in methods
        if m.kind is not MethodKind.PASSWORD
        and m.created is not None
        and now - m.created < RECENT_METHOD_WINDOW
    ]
    if not recent:
        return passed(CheckName.RECENT_METHOD, "none")
    parts = [f"{_method_name(m)} added {_ago(now - m.created)} ago" for m in recent if m.created]
    return CheckResult(
        CheckName.RECENT_METHOD,
        True,
        "; ".join(parts) + " (approve only after a strong verification)",
        strong_verification=True,
    )


def needs_strong_verification(stored_checks: Iterable[Mapping[str, Any]] | None) -> bool:
    """Whether a request's stored checks (`request.checks`) ask for a strong verification."""
    return any(bool(c.get(STRONG_VERIFICATION_KEY)) for c in stored_checks or [])


def _method_name(method: AuthMethod) -> str:
    kind = METHOD_LABELS.get(method.kind, "Sign-in method")
    name = (method.display_name or "").strip()[:60]
    return f"{kind} ({name})" if name and name.lower() != kind.lower() else kind


def _ago(age: timedelta) -> str:
    minutes = max(0, int(age.total_seconds() // 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"
