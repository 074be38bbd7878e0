"""The pinned link between a Slack user and an Entra user, made at the first successful mapping."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime


class IdentityLink(Base):
    __tablename__ = "identity_links"

    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    entra_object_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_principal_name: Mapped[str] = mapped_column(String(320))
    email_at_pinning: Mapped[str] = mapped_column(String(320))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
