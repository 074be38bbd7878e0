"""Lost-key reports: who asked for whom, what was chosen, what was done step by step, and what is owed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime


class LostReason(StrEnum):
    LOST = "lost"
    STOLEN = "stolen"
    BROKEN = "broken"
    AT_HOME = "at_home"  # left at home today: nothing is removed

    @property
    def removes(self) -> bool:
        return self is not LostReason.AT_HOME


class ReportState(StrEnum):
    FORM = "form"  # the modal lists the methods; nothing chosen yet
    CHECKING = "checking"  # one form submission won and is checking the choice against Entra
    CONFIRMING = "confirming"  # the reporter sees exactly what will happen; nothing changed in Entra
    RUNNING = "running"  # one confirmation won and is removing methods right now
    PARTIAL = "partial"  # some steps are owed; a durable deadline finishes them
    DONE = "done"  # every step finished (or, for "left at home", nothing to do)
    GAVE_UP = "gave_up"  # the finish ran out of time: the helpdesk must finish by hand
    REFUSED = "refused"  # the submission named something that is not the target's, or no authority
    ABANDONED = "abandoned"  # Entra didn't answer before anything was confirmed: nothing changed


IN_FLIGHT = frozenset({ReportState.CHECKING, ReportState.RUNNING})
STARTED = frozenset({ReportState.RUNNING, ReportState.PARTIAL, ReportState.DONE, ReportState.GAVE_UP})


class StepOutcome(StrEnum):
    PENDING = "pending"  # not tried yet, or Graph was busy/down: the deadline tries again
    REMOVED = "removed"
    ALREADY_GONE = "already_gone"  # Graph 404, or no longer listed: counts as done
    STILL_LISTED = "still_listed"  # deleted, but the read-back still lists it: tried again
    REFUSED = "refused"  # Graph will not do it (e.g. the default phone): the helpdesk must act
    DONE = "done"  # the session revocation

    @property
    def finished(self) -> bool:
        return self in _FINISHED

    @property
    def succeeded(self) -> bool:
        return self in (StepOutcome.REMOVED, StepOutcome.ALREADY_GONE, StepOutcome.DONE)


_FINISHED = frozenset({StepOutcome.REMOVED, StepOutcome.ALREADY_GONE, StepOutcome.DONE, StepOutcome.REFUSED})


class LostReport(Base):
    __tablename__ = "lost_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # opaque; the only id in the modal
    # The modal's root view id: every submission of that modal finds this row, never a second one.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)

    target_slack_id: Mapped[str] = mapped_column(String(32), index=True)
    target_entra_id: Mapped[str] = mapped_column(String(64), index=True)
    target_name: Mapped[str] = mapped_column(String(200))
    target_upn: Mapped[str] = mapped_column(String(256))
    reporter_slack_id: Mapped[str] = mapped_column(String(32))  # the target, or the approver who helped
    manager_slack_id: Mapped[str | None] = mapped_column(String(32))

    # One entry per selected method (see MethodEntry): what it was, and what became of it.
    methods: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    revoke_outcome: Mapped[str] = mapped_column(String(16), default=StepOutcome.PENDING.value)
    revoke_error: Mapped[str | None] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(default=False)  # the read-back no longer lists what was removed
    strong_left: Mapped[bool | None] = mapped_column()  # a phishing-resistant method left, after read-back
    last_error: Mapped[str | None] = mapped_column(String(200))

    dm_channel: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))
    desk_pickup_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replacement_request_id: Mapped[str | None] = mapped_column(String(36))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finish_by: Mapped[datetime | None] = mapped_column(UTCDateTime())  # give up on the durable finish
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def for_someone_else(self) -> bool:
        return self.reporter_slack_id != self.target_slack_id


@dataclass(frozen=True)
class MethodEntry:
    """One selected method as stored in `LostReport.methods` (what it was, and what became of it)."""

    id: str
    kind: str  # a bot.directory.MethodKind value
    name: str | None
    model: str | None
    aaguid: str | None
    created: datetime | None
    detail: str | None = None
    strong: bool = False  # phishing-resistant
    outcome: StepOutcome = StepOutcome.PENDING
    error: str | None = None

    def with_outcome(self, outcome: StepOutcome, error: str | None = None) -> MethodEntry:
        return replace(self, outcome=outcome, error=error)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "model": self.model,
            "aaguid": self.aaguid,
            "created": self.created.isoformat() if self.created else None,
            "detail": self.detail,
            "strong": self.strong,
            "outcome": self.outcome.value,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MethodEntry:
        created = data.get("created")
        return cls(
            id=str(data["id"]),
            kind=str(data.get("kind") or "other"),
            name=data.get("name"),
            model=data.get("model"),
            aaguid=data.get("aaguid"),
            created=datetime.fromisoformat(created) if created else None,
            detail=data.get("detail"),
            strong=bool(data.get("strong")),
            outcome=StepOutcome(data.get("outcome") or StepOutcome.PENDING.value),
            error=data.get("error"),
        )


def entries(report: LostReport) -> list[MethodEntry]:
    return [MethodEntry.from_json(item) for item in report.methods or []]


def entries_json(items: list[MethodEntry]) -> list[dict[str, Any]]:
    return [item.to_json() for item in items]
