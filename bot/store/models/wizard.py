"""The setup wizard in a person's DM, one per revealed pass: where they are, what Entra showed, who helps.

The columns from `guide_id` to `version` are `bot.domain.wizard.WizardState`; every change to them is a
compare-and-set on `version`, so two replicas (or two clicks) can never both move the wizard. Nothing
secret is ever stored here: not the pass, not a PIN, not a token code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime

LIVE_PHASES = ("choosing", "in_step", "waiting_for_entra")


class Wizard(Base):
    __tablename__ = "wizards"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("tap_requests.id"), unique=True)
    user_slack_id: Mapped[str] = mapped_column(String(32), index=True)
    user_entra_id: Mapped[str] = mapped_column(String(64))

    # WizardState
    guide_id: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(20), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    step_count: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stuck: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)

    # The one DM message the wizard lives in, and how to show times to this person.
    channel: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    tz: Mapped[str | None] = mapped_column(String(64))

    # What the tenant's FIDO2 policy means for this person (wizard_views.Preflight as JSON).
    preflight: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # Completion watch: a method of the guide's kind, not in the baseline, created after the reveal.
    revealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pass_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    baseline_method_ids: Mapped[list[str] | None] = mapped_column(JSON)
    seen_request_state: Mapped[str | None] = mapped_column(String(20))
    nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    oath_failures: Mapped[int] = mapped_column(Integer, default=0)

    # "I'm stuck": the latest post in the card's thread and the helpdesk member who took it.
    help_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    help_post_ts: Mapped[str | None] = mapped_column(String(32))
    helper_slack_id: Mapped[str | None] = mapped_column(String(32))
    helped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # What Entra showed at the end (never a secret: the method's id, model and the name the user chose).
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    method_id: Mapped[str | None] = mapped_column(String(256))
    method_model: Mapped[str | None] = mapped_column(String(200))
    method_name: Mapped[str | None] = mapped_column(String(200))
    ended_reason: Mapped[str | None] = mapped_column(String(20))  # replaced / revoked / cancelled / expired

    @property
    def live(self) -> bool:
        return self.phase in LIVE_PHASES
