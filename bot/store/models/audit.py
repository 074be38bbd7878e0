"""The append-only, hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, BigInteger, CheckConstraint, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base, UTCDateTime

# PostgreSQL refuses any change to a written audit row. The migration installs the same guard; this copy
# covers databases built straight from the models (tests, demo).
APPEND_ONLY_GUARD = (
    """
    CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION USING
            MESSAGE = 'audit_log is append-only: ' || TG_OP || ' refused',
            ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()
    """,
    """
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()
    """,
)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (CheckConstraint("outcome IN ('ok', 'refused', 'failed')", name="outcome"),)

    # Assigned by the writer as head + 1 under the chain lock, so the sequence has no gaps.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(128), index=True)
    target: Mapped[str | None] = mapped_column(String(256), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


for _statement in APPEND_ONLY_GUARD:
    event.listen(AuditRow.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))
