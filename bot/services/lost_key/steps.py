"""One pass over what a confirmed report owes: delete in Entra, sign out, read back, record the outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.directory import AuthMethod, DirectoryError, MethodKind, Throttled, Unavailable
from bot.services import desk_inventory
from bot.services.lost_key.common import (
    DEFAULT_WAIT,
    FINISH_DEADLINE,
    _audit,
    _deadline_key,
    _summary,
    load,
)
from bot.services.runtime import Runtime
from bot.store import lost_repo
from bot.store.models.lost_reports import (
    LostReport,
    MethodEntry,
    ReportState,
    StepOutcome,
    entries,
    entries_json,
)


@dataclass(frozen=True)
class Run:
    """What one pass over the steps achieved, and how long Graph asked us to wait before the next."""

    items: list[MethodEntry]
    revoke: StepOutcome
    revoke_error: str | None
    verified: bool
    strong_left: bool | None
    wait: float | None

    @property
    def complete(self) -> bool:
        return self.verified and self.revoke.finished and all(e.outcome.finished for e in self.items)


class _Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def note(self, exc: DirectoryError) -> str:
        if isinstance(exc, Throttled):
            self.seconds.append(max(1.0, exc.retry_after))
            return "throttled"
        retry = exc.retry_after if isinstance(exc, Unavailable) else None
        self.seconds.append(max(1.0, retry) if retry else DEFAULT_WAIT)
        return "unavailable"

    @property
    def longest(self) -> float | None:
        return max(self.seconds) if self.seconds else None


RETRYABLE = (Throttled, Unavailable)


async def run_steps(rt: Runtime, report_id: str) -> Run:
    """Delete what is still owed, sign out, read back. Idempotent: safe to run again after a crash."""
    report = await load(rt, report_id)
    assert report is not None
    user, waits = report.target_entra_id, _Waits()
    listed = await _listed(rt, user, waits)
    items, removed_now = await _delete_owed(rt, report, listed, waits)
    await desk_inventory.mark_lost(  # the key inventory follows: those keys are lost (never raises)
        rt,
        entra_user_id=user,
        method_ids=[i.id for i in items if i.kind == MethodKind.FIDO2 and i.outcome.succeeded],
        actor=f"slack:{report.reporter_slack_id}",
        reason=report.reason or "lost",
    )
    revoke, revoke_error = StepOutcome(report.revoke_outcome), report.revoke_error
    if not revoke.finished or removed_now:  # a removal after an earlier sign-out needs another one
        revoke, revoke_error = await _revoke(rt, report, waits)
    items, verified, strong_left = await _read_back(rt, report, items, waits)
    return Run(items, revoke, revoke_error, verified, strong_left, waits.longest)


async def _listed(rt: Runtime, user: str, waits: _Waits) -> dict[str, AuthMethod] | None:
    try:
        listed = await rt.directory.list_methods(user)
    except RETRYABLE as exc:
        waits.note(exc)
        return None  # deletes go ahead by id: the ids were checked against this user's list at submit
    # A kind Graph was not asked about (hardware tokens, beta) is not "gone": delete by id, as above.
    return {m.id: m for m in listed} if not listed.unchecked else None


async def _delete_owed(
    rt: Runtime, report: LostReport, listed: dict[str, AuthMethod] | None, waits: _Waits
) -> tuple[list[MethodEntry], bool]:
    items, removed_now = [], False
    for entry in entries(report):
        if entry.outcome.finished:
            items.append(entry)
            continue
        if listed is not None and entry.id not in listed:
            done = entry.with_outcome(
                StepOutcome.REMOVED if entry.outcome is StepOutcome.STILL_LISTED else StepOutcome.ALREADY_GONE
            )
        else:
            done = await _delete_one(rt, report, entry, waits)
            removed_now = removed_now or done.outcome is StepOutcome.REMOVED
        if done.outcome is not entry.outcome or done.error != entry.error:
            await _audit_method(rt, report, done)
        items.append(done)
    return items, removed_now


async def _delete_one(rt: Runtime, report: LostReport, entry: MethodEntry, waits: _Waits) -> MethodEntry:
    method = AuthMethod(
        id=entry.id,
        kind=MethodKind(entry.kind),
        display_name=entry.name,
        created=entry.created,
        model=entry.model,
        aaguid=entry.aaguid,
    )
    try:
        deleted = await rt.directory.delete_method(report.target_entra_id, method)
    except RETRYABLE as exc:
        return entry.with_outcome(StepOutcome.PENDING, waits.note(exc))
    except DirectoryError as exc:
        return entry.with_outcome(StepOutcome.REFUSED, str(exc)[:150])
    return entry.with_outcome(StepOutcome.REMOVED if deleted else StepOutcome.ALREADY_GONE)


_METHOD_ACTION = {
    StepOutcome.REMOVED: ("method.removed", "ok"),
    StepOutcome.ALREADY_GONE: ("method.already_gone", "ok"),
    StepOutcome.PENDING: ("method.deferred", "failed"),
    StepOutcome.STILL_LISTED: ("method.still_listed", "failed"),
    StepOutcome.REFUSED: ("method.refused", "failed"),
}


async def _audit_method(rt: Runtime, report: LostReport, entry: MethodEntry) -> None:
    action, outcome = _METHOD_ACTION[entry.outcome]
    await _audit(
        rt, action, "system", report, outcome=outcome, method=_summary([entry])[0], error=entry.error
    )


async def _revoke(rt: Runtime, report: LostReport, waits: _Waits) -> tuple[StepOutcome, str | None]:
    try:
        await rt.directory.revoke_sessions(report.target_entra_id)
    except RETRYABLE as exc:
        error = waits.note(exc)
        await _audit(rt, "sessions.deferred", "system", report, outcome="failed", error=error)
        return StepOutcome.PENDING, error
    except DirectoryError as exc:
        await _audit(rt, "sessions.refused", "system", report, outcome="failed", error=str(exc)[:150])
        return StepOutcome.REFUSED, str(exc)[:150]
    await _audit(rt, "sessions.revoked", "system", report)
    return StepOutcome.DONE, None


async def _read_back(
    rt: Runtime, report: LostReport, items: list[MethodEntry], waits: _Waits
) -> tuple[list[MethodEntry], bool, bool | None]:
    """List again: what we removed must be gone. Also learn whether a phishing-resistant method is left."""
    try:
        after = await rt.directory.list_methods(report.target_entra_id)
    except RETRYABLE as exc:
        waits.note(exc)
        return items, False, report.strong_left
    still = {m.id for m in after}
    checked = []
    for item in items:
        if item.outcome.succeeded and item.id in still:
            item = item.with_outcome(StepOutcome.STILL_LISTED)
            await _audit_method(rt, report, item)
        checked.append(item)
    verified = not any(i.outcome is StepOutcome.STILL_LISTED for i in checked)
    strong_left = any(m.kind.phishing_resistant for m in after)
    if verified:
        await _audit(rt, "verified", "system", report, strong_left=strong_left)
    else:
        waits.seconds.append(DEFAULT_WAIT)
    return checked, verified, strong_left


async def _settle(rt: Runtime, report: LostReport, run: Run, *, reschedule: bool) -> ReportState | None:
    """Record the run: DONE when nothing is owed, else PARTIAL (the deadline comes back after the wait).
    None when the report moved on meanwhile (handed to the helpdesk): nothing is recorded then."""
    now = rt.clock.now()
    values: dict[str, Any] = {
        "methods": entries_json(run.items),
        "revoke_outcome": run.revoke.value,
        "revoke_error": run.revoke_error,
        "verified": run.verified,
        "strong_left": run.strong_left,
    }
    if run.complete:
        state, values["completed_at"] = ReportState.DONE, now
    else:
        state = ReportState.PARTIAL
    key = _deadline_key(report.id)
    async with rt.db.session() as session:
        if not await lost_repo.transition(
            session, report.id, expected=[ReportState.RUNNING, ReportState.PARTIAL], to=state, **values
        ):
            return None
        if run.complete:
            await rt.deadlines.cancel(key, session=session)
        elif reschedule:
            due = now + timedelta(seconds=run.wait or DEFAULT_WAIT)
            payload = {"report_id": report.id}
            await rt.deadlines.schedule(FINISH_DEADLINE, due, payload, key=key, replace=True, session=session)
        await rt.audit.record(
            "lostkey.completed" if run.complete else "lostkey.partial",
            actor="system",
            target=f"entra:{report.target_entra_id}",
            outcome="ok" if run.complete else "failed",
            details={
                "report_id": report.id,
                "methods": [i.outcome.value for i in run.items],
                "sessions": run.revoke.value,
                "verified": run.verified,
                "retry_in": run.wait,
            },
            session=session,
        )
    return state
