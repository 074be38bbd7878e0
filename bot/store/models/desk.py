"""Desk agents and their link: agents, one-time pairing codes (hashed), jobs, seen nonces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime


class AgentState(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # paired, but a second approver has not confirmed
    ACTIVE = "active"
    REVOKED = "revoked"


class JobState(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


OPEN_JOB_STATES = (JobState.QUEUED, JobState.DELIVERED)


LIVE_AGENT = text("state <> 'revoked'")


class DeskAgent(Base):
    __tablename__ = "desk_agents"
    # A name belongs to one live agent at a time; a revoked agent keeps its row (and history) by id,
    # and its name can be paired again.
    __table_args__ = (
        Index(
            "uq_desk_agents_live_name",
            "name",
            unique=True,
            postgresql_where=LIVE_AGENT,
            sqlite_where=LIVE_AGENT,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)  # Ed25519, base64url raw bytes
    state: Mapped[str] = mapped_column(String(24), index=True)
    code_issued_by_slack_id: Mapped[str] = mapped_column(String(32))
    confirmed_by_slack_id: Mapped[str | None] = mapped_column(String(32))
    revoked_by_slack_id: Mapped[str | None] = mapped_column(String(32))
    paired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    card_channel: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))


class PairingCode(Base):
    __tablename__ = "desk_pairing_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex; the code never rests
    issued_by_slack_id: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_id: Mapped[str | None] = mapped_column(String(36))


class DeskJob(Base):
    __tablename__ = "desk_jobs"
    __table_args__ = (Index("ix_desk_jobs_agent_state", "agent_id", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("desk_agents.id"))
    kind: Mapped[str] = mapped_column(String(32))
    target_entra_id: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    requested_by_slack_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class SeenNonce(Base):
    """Nonces of accepted agent messages, kept until the message they came with has expired."""

    __tablename__ = "desk_seen_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(36))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
