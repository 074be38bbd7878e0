"""Temporary Access Pass requests and the passes issued for them (never the pass value)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime

OPEN_STATES_SQL = "state IN ('awaiting_target','awaiting_approval','approved','issuing','issued')"


class TapRequest(Base):
    __tablename__ = "tap_requests"
    __table_args__ = (
        # One open request per person: a second "set up my key" finds the first instead of racing it.
        Index(
            "uq_tap_requests_open_target",
            "target_slack_id",
            unique=True,
            sqlite_where=text(OPEN_STATES_SQL),
            postgresql_where=text(OPEN_STATES_SQL),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    decide_by: Mapped[datetime] = mapped_column(UTCDateTime())

    target_slack_id: Mapped[str] = mapped_column(String(32), index=True)
    target_entra_id: Mapped[str] = mapped_column(String(64), index=True)
    requester_slack_id: Mapped[str] = mapped_column(String(32))
    # Card evidence: name, UPN, department, job title, manager, created; and each check's result.
    target_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    manager_entra_id: Mapped[str | None] = mapped_column(String(64))
    manager_slack_id: Mapped[str | None] = mapped_column(String(32))
    manager_status: Mapped[str] = mapped_column(String(20))
    manager_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    manager_message_channel: Mapped[str | None] = mapped_column(String(32))
    manager_message_ts: Mapped[str | None] = mapped_column(String(32))

    card_channel: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    dm_channel: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))

    decided_by_slack_id: Mapped[str | None] = mapped_column(String(32))
    decided_by_entra_id: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verification_method: Mapped[str | None] = mapped_column(String(64))
    decision_note: Mapped[str | None] = mapped_column(Text)
    approval_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The admin process for privileged accounts (bot/domain/admin_process.py): 2 approvals from two
    # different approvers. The first is recorded here while the request still awaits approval; the
    # second is decided_by_*. The pass may be revealed only from reveal_not_before (cooling-off).
    approvals_needed: Mapped[int] = mapped_column(Integer, default=1)
    first_approver_slack_id: Mapped[str | None] = mapped_column(String(32))
    first_approver_entra_id: Mapped[str | None] = mapped_column(String(64))
    first_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_verification_method: Mapped[str | None] = mapped_column(String(64))
    first_approval_note: Mapped[str | None] = mapped_column(Text)
    second_approver_slack_id: Mapped[str | None] = mapped_column(String(32))  # kept if later stopped
    reveal_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())

    issuing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tap_id: Mapped[str | None] = mapped_column(String(64))
    tap_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tap_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reveal_count: Mapped[int] = mapped_column(Integer, default=0)
    # The modal showing the current pass (a Slack view id, not a secret): redacted when the pass ends.
    pass_view_id: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TapIssuance(Base):
    """One row per pass created in Entra: the basis of the per-user, per-approver and tenant limits."""

    __tablename__ = "tap_issuances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("tap_requests.id"), index=True)
    target_entra_id: Mapped[str] = mapped_column(String(64), index=True)
    approver_slack_id: Mapped[str] = mapped_column(String(32), index=True)
    tap_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
