"""Keys prepared for a person at a desk agent, and the random PINs of keys prepared for pickup (sealed).

A `DeskProvisioning` row hangs off the approval request (`tap_requests`, kind `desk_key`) and follows
the desk's work: creating the passkey, registering it in Entra, finishing the key (forced PIN change).

A `SealedPin` row never holds a PIN in the clear: it holds a per-key X25519 private key wrapped with the
server's seal key (AES-GCM), and the PIN as the agent sealed it to that key's public half. Deleting the
row (on reveal, or 24 h later) destroys the only way to open the PIN, including the copy of the sealed
PIN that stays in the desk job's result.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime


class PinMode(StrEnum):
    AT_DESK = "at_desk"  # the person types their own PIN on the desk's screen
    PICKUP = "pickup"  # a random PIN nobody at the desk sees, revealed to the person in Slack


class ProvisioningStep(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    CREATING = "creating"  # creation options fetched, the desk is creating the passkey
    REGISTERING = "registering"  # the attestation is back, Graph is registering it
    FINISHING = "finishing"  # registered; the desk is forcing a PIN change at first use
    DONE = "done"
    FAILED = "failed"


class DeskProvisioning(Base):
    __tablename__ = "desk_provisionings"

    request_id: Mapped[str] = mapped_column(ForeignKey("tap_requests.id"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("desk_agents.id"), index=True)
    pin_mode: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(20), index=True)
    technician_slack_id: Mapped[str] = mapped_column(String(32))
    reply_channel: Mapped[str | None] = mapped_column(String(32))  # where the technician asked
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    api_version: Mapped[str | None] = mapped_column(String(8))
    challenge_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    create_job_id: Mapped[str | None] = mapped_column(String(36))
    finish_job_id: Mapped[str | None] = mapped_column(String(36))
    method_id: Mapped[str | None] = mapped_column(String(200))
    key_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # aaguid, serial, model, firmware
    key_record_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)


class SealedPin(Base):
    __tablename__ = "desk_sealed_pins"

    request_id: Mapped[str] = mapped_column(ForeignKey("tap_requests.id"), primary_key=True)
    target_slack_id: Mapped[str] = mapped_column(String(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)  # nonce || AES-GCM(seal key, X25519 private)
    sealed_pin: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the agent's sealed box, once back
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    destroy_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dm_channel: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))
