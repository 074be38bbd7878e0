"""Hardware OATH in Slack: the person types the token's serial and current code, keydesk assigns and
activates it in Entra (beta `assignAndActivateBySerialNumber`).

The code is a one-time secret: it lives in a `Secret` from the form to the gateway and is never logged,
stored, audited or shown again (a refused code gets a fresh, empty field).
"""

from __future__ import annotations

from bot.directory import (
    AuthMethod,
    DirectoryError,
    MethodKind,
    Throttled,
    TokenAssignedElsewhere,
    UnknownToken,
    WrongCode,
)
from bot.domain.guides import GuideMethod, UnknownGuideError
from bot.domain.text import escape_mrkdwn
from bot.logs import get_logger
from bot.services import registration, tap_common
from bot.services.runtime import Runtime
from bot.slack import wizard_views
from bot.slack.messenger import SlackError
from bot.slack.wizard_views import OathForm
from bot.store import wizard_repo
from bot.store.models.wizard import Wizard

log = get_logger(__name__)

MAX_FAILURES = 5
TOO_MANY = (
    "That didn't work several times, so I've stopped trying for now. Press *I'm stuck* on your setup "
    "message and the helpdesk will sort it out with you."
)


async def open_form(rt: Runtime, user_id: str, value: str, trigger_id: str) -> None:
    try:
        wizard_id, _, _ = wizard_views.parse_value(value)
    except ValueError:
        return
    row = await registration.load(rt, wizard_id)
    problem = _problem(rt, row, user_id)
    if row is not None and not problem and row.oath_failures >= MAX_FAILURES:
        problem = TOO_MANY
    view = wizard_views.oath_result(problem) if problem else wizard_views.oath_modal(wizard_id)
    try:
        await rt.slack.open_view(trigger_id, view)
    except SlackError as exc:
        log.warning("registration.oath_modal_failed", error=exc.code)


def _problem(rt: Runtime, row: Wizard | None, user_id: str) -> str | None:
    if row is None or row.user_slack_id != user_id:
        return "This setup isn't yours."
    if not row.live:
        return "This setup is already over."
    try:
        method = registration.library(rt).get(row.guide_id).method
    except UnknownGuideError:
        return "This setup isn't for a code token."
    return None if method is GuideMethod.HARDWARE_OATH else "This setup isn't for a code token."


async def submit(
    rt: Runtime, user_id: str, view_id: str, wizard_id: str, attempt: int, form: OathForm
) -> None:
    """Called after the modal was answered with 'working'; fills it in with the outcome."""
    row = await registration.load(rt, wizard_id)
    problem = _problem(rt, row, user_id)
    if problem or row is None:
        await _show(rt, view_id, wizard_views.oath_result(problem or "This setup isn't yours."))
        return
    try:
        await rt.directory.assign_hardware_oath(
            row.user_entra_id, serial=form.serial, code=form.code, display_name=form.name
        )
    except DirectoryError as exc:
        await _refused(rt, row, view_id, attempt, form, exc)
        return
    await rt.audit.record(
        "registration.oath.assigned",
        actor=f"slack:{user_id}",
        target=f"entra:{row.user_entra_id}",
        details={"request_id": row.request_id, "serial": form.serial},
    )
    await _show(
        rt,
        view_id,
        wizard_views.oath_result(
            f":white_check_mark: Your token *{escape_mrkdwn(form.serial)}* is added to your account and "
            "switched on. Your setup message in our DM shows how to test it."
        ),
    )
    # Graph's 204 is the proof: hardware tokens are beta-only, so v1.0's method list never shows them.
    token = AuthMethod(
        id=f"hardware_oath:{form.serial}",
        kind=MethodKind.HARDWARE_OATH,
        display_name=form.name,
        created=rt.clock.now(),
        model=f"Token {form.serial}",
        detail=f"serial {form.serial}",
    )
    try:
        await registration.complete(rt, row.id, token)
    except DirectoryError as exc:
        log.warning("registration.oath_finish_deferred", error=type(exc).__name__)
        await registration.remember_pending(rt, row, token)


async def _refused(
    rt: Runtime, row: Wizard, view_id: str, attempt: int, form: OathForm, exc: DirectoryError
) -> None:
    reason, message, retry = _explain(exc, form.serial)
    failures = row.oath_failures
    if isinstance(exc, WrongCode | UnknownToken):
        async with rt.db.session() as session:
            failures = await wizard_repo.count_oath_failure(session, row.id)
    await rt.audit.record(
        "registration.oath.refused",
        actor=f"slack:{row.user_slack_id}",
        target=f"entra:{row.user_entra_id}",
        outcome="refused",
        details={"request_id": row.request_id, "serial": form.serial, "reason": reason},
    )
    if isinstance(exc, TokenAssignedElsewhere):
        request = await tap_common.load(rt, row.request_id)
        await tap_common.alert(
            rt,
            f"<@{row.user_slack_id}> tried to add hardware token {escape_mrkdwn(form.serial)}, which is "
            "assigned to someone else in Entra. Please check who should have it.",
            thread_of=request,
        )
    if failures >= MAX_FAILURES:
        await _show(rt, view_id, wizard_views.oath_result(TOO_MANY))
    elif retry:
        view = wizard_views.oath_modal(row.id, serial=form.serial, attempt=attempt + 1, problem=message)
        await _show(rt, view_id, view)
    else:
        await _show(rt, view_id, wizard_views.oath_result(message))


def _explain(exc: DirectoryError, serial: str) -> tuple[str, str, bool]:
    """(audit reason, what the person reads, whether the form should come back to try again)."""
    shown = escape_mrkdwn(serial)
    if isinstance(exc, WrongCode):
        return (
            "wrong_code",
            "That code wasn't accepted. Codes change every 30 seconds: press the token's button and type "
            "the new code straight away.",
            True,
        )
    if isinstance(exc, UnknownToken):
        return (
            "unknown_token",
            f"I can't find a token with serial *{shown}* in your organisation's list. Check the number on the "
            "back. If it's right, press *I'm stuck* and the helpdesk will add it.",
            True,
        )
    if isinstance(exc, TokenAssignedElsewhere):
        return (
            "assigned_elsewhere",
            f":no_entry: Token *{shown}* belongs to someone else's account, so I can't add it to yours. "
            "I've told the helpdesk; press *I'm stuck* if you need a hand.",
            False,
        )
    if isinstance(exc, Throttled):
        return ("throttled", "Microsoft Entra is busy right now. Try again in a minute.", True)
    return (
        type(exc).__name__,
        "Microsoft Entra didn't answer properly, so nothing changed. Try again in a minute.",
        True,
    )


async def _show(rt: Runtime, view_id: str, view: dict[str, object]) -> None:
    try:
        await rt.slack.update_view(view_id, view)
    except SlackError as exc:
        log.info("registration.oath_view_gone", error=exc.code)  # the person closed it; the audit has it
