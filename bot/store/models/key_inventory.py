"""The inventory of security keys the desk agents have seen, and every event in a key's life."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime


class KeyState(StrEnum):
    STOCK = "stock"
    PROVISIONED = "provisioned"
    HANDED_OVER = "handed_over"
    ACTIVE = "active"
    LOST = "lost"
    RETIRED = "retired"


class KeyRecord(Base):
    __tablename__ = "key_inventory"
    # A key is identified by its model and serial; a key that exposes no serial gets a row per sighting.
    __table_args__ = (UniqueConstraint("aaguid", "serial", name="model_serial"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    serial: Mapped[str | None] = mapped_column(String(128), index=True)
    aaguid: Mapped[str] = mapped_column(String(36))
    model: Mapped[str | None] = mapped_column(String(200))
    firmware: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    user_entra_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_slack_id: Mapped[str | None] = mapped_column(String(32))
    entra_method_id: Mapped[str | None] = mapped_column(String(200))
    desk_agent_id: Mapped[str | None] = mapped_column(String(36))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KeyEvent(Base):
    __tablename__ = "key_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("key_inventory.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    desk_agent_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
