"""What every step shares: the finish deadline, loading a report, the audit, the modal, method entries."""

from __future__ import annotations

from typing import Any

from bot.directory import AuthMethod, DirectoryError
from bot.logs import get_logger
from bot.services.runtime import Runtime
from bot.slack import lost_views as views
from bot.slack.messenger import SlackError
from bot.store import lost_repo
from bot.store.models.lost_reports import LostReport, MethodEntry

log = get_logger(__name__)

FINISH_DEADLINE = "lostkey.finish"
DEFAULT_WAIT = 30.0  # seconds before retrying when Graph gave no Retry-After
DIRECTORY_DOWN = (
    "Microsoft Entra didn't answer just now, so I couldn't {what}. Nothing was changed. Please try again "
    "in a minute. If the key was stolen, call {support} now."
)


def _deadline_key(report_id: str) -> str:
    return f"lostkey-finish:{report_id}"


async def load(rt: Runtime, report_id: str) -> LostReport | None:
    if not report_id:
        return None
    async with rt.db.session() as session:
        return await lost_repo.get(session, report_id)


async def _audit(
    rt: Runtime,
    action: str,
    actor: str,
    report: LostReport | None,
    *,
    outcome: str = "ok",
    target: str | None = None,
    **details: Any,
) -> None:
    if report is not None:
        details = {"report_id": report.id, **details}
        target = target or f"entra:{report.target_entra_id}"
    await rt.audit.record(f"lostkey.{action}", actor=actor, target=target, outcome=outcome, details=details)


async def _refused(rt: Runtime, action: str, actor: str, target: str, reason: str, **details: Any) -> None:
    """Audit a refusal that has no report (yet) to hang it on."""
    await _audit(rt, action, actor, None, outcome="refused", target=target, reason=reason, **details)


async def _set_view(rt: Runtime, view_id: str, view: dict[str, Any]) -> None:
    try:
        await rt.slack.update_view(view_id, view)
    except SlackError as exc:  # the person closed the modal; the DM and the audit still tell the story
        log.info("lostkey.view.update_failed", error=exc.code)


def _entry(method: AuthMethod) -> MethodEntry:
    return MethodEntry(
        id=method.id,
        kind=method.kind.value,
        name=method.display_name,
        model=method.model,
        aaguid=method.aaguid,
        created=method.created,
        detail=method.detail,
        strong=method.kind.phishing_resistant,
    )


def _summary(items: list[MethodEntry]) -> list[dict[str, Any]]:
    """KEY-1: name, AAGUID and date of each method, for the audit log."""
    return [
        {
            "id": e.id[:200],
            "kind": e.kind,
            "name": e.name,
            "aaguid": e.aaguid,
            "created": e.created.isoformat() if e.created else None,
            "outcome": e.outcome.value,
        }
        for e in items
    ]


async def _directory_down(
    rt: Runtime, view_id: str, user_id: str, target: str, exc: DirectoryError, what: str
) -> None:
    log.warning("lostkey.directory_unavailable", error=type(exc).__name__)
    await _audit(
        rt,
        "failed",
        f"slack:{user_id}",
        None,
        outcome="failed",
        target=f"slack:{target}",
        reason="directory_unavailable",
        error=type(exc).__name__,
        step=what,
    )
    text = DIRECTORY_DOWN.format(what=what, support=rt.settings.support_contact)
    await _set_view(rt, view_id, views.message_modal(text))
