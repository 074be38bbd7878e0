"""security.md IDV-5 through Entra ID Protection: the user-risk check, run when a request is filed and
again just before it is approved (an account flagged in between is not approved).

KEYDESK_RISK_CHECK: `required` refuses when the risk can't be read, `if_available` lets requests through
then (the card says so), `off` never asks. Graph answers 403 both without Entra ID P2 and when the
app lost IdentityRiskyUser.Read.All, so under `if_available` the helpdesk channel is told, at most once
an hour per process (on the runtime's clock), that the check is not running: a permission removed by mistake (or on purpose)
must not switch it off unnoticed. Any other failure propagates (directory down: fail closed).
"""

from __future__ import annotations

from datetime import timedelta

from bot.directory import Forbidden, Unauthenticated
from bot.directory.types import UserRisk
from bot.domain import eligibility as rules
from bot.domain.eligibility import CheckName, CheckResult
from bot.logs import get_logger
from bot.services import tap_common
from bot.services.runtime import Runtime
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)

UNAVAILABLE_NOTICE_EVERY = timedelta(hours=1)  # between two "the risk check isn't running" notices


async def check(rt: Runtime, user_id: str) -> CheckResult:
    mode = rt.settings.risk_check
    if mode == "off":
        return rules.passed(CheckName.USER_RISK, "not checked (KEYDESK_RISK_CHECK=off)")
    risk: UserRisk | None = None
    available = True
    try:
        risk = await rt.directory.user_risk(user_id)
    except Unauthenticated:
        raise
    except Forbidden as exc:
        log.warning("tap.risk_check.unavailable", status=exc.status, code=exc.code, mode=mode)
        available = False
        if mode == "if_available":
            await _say_it_is_not_running(rt)
    return rules.check_user_risk(
        risk, available=available, required=mode == "required", support=rt.settings.support_contact
    )


def unavailable(result: CheckResult) -> bool:
    """A refusal because the risk could not be read (KEYDESK_RISK_CHECK=required), not because of a risk."""
    return result.evidence.startswith(rules.RISK_UNAVAILABLE)


async def alert(
    rt: Runtime, result: CheckResult, asked: str, *, thread_of: TapRequest | None = None, now: bool = False
) -> None:
    """Tell the helpdesk why the risk check refused `asked` (e.g. "<@U1> asked for a pass"): loudly for a
    flagged account, quietly when the check can't run. The person themselves only hears "contact the
    helpdesk" (eligibility.contact_helpdesk)."""
    if unavailable(result):
        text = (
            f"{asked}, but the Entra ID Protection risk check can't run ({result.evidence}). Refused: "
            "check the account's risk yourself before helping them."
        )
    else:
        text = (
            f"{asked}, but Entra ID Protection {'now ' if now else ''}flags the account ({result.evidence}). "
            "Refused: investigate the account (possible takeover) before helping them."
        )
    await tap_common.alert(rt, text, loud=not unavailable(result), thread_of=thread_of)


async def _say_it_is_not_running(rt: Runtime) -> None:
    now, last = rt.clock.now(), rt.risk_unavailable_noticed
    if last is not None and now - last < UNAVAILABLE_NOTICE_EVERY:
        return
    rt.risk_unavailable_noticed = now
    await tap_common.alert(
        rt,
        "The Entra ID Protection risk check is not running: Microsoft Graph refused to read user risk (no "
        "Entra ID P2 licence, or keydesk's IdentityRiskyUser.Read.All permission is missing). Requests go "
        "through without it (KEYDESK_RISK_CHECK=if_available). If you have P2, restore the permission.",
    )
