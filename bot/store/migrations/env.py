"""Alembic environment. Runs only through bot.store.migrate, which hands over an open connection.

The connection comes from `bot.store.db.make_engine` (so SQLite pragmas and a PostgreSQL
`?search_path=` schema apply) and arrives inside a transaction; Alembic joins it.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from bot.store.db import UTCDateTime
from bot.store.migrations.guards import AUDIT_TABLE, AuditGuardOp
from bot.store.models import metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Revisions stay free of our own types: UTCDateTime is stored as a plain timezone-aware DateTime."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def process_revision_directives(_context: MigrationContext, _revision: Any, directives: list[Any]) -> None:
    """Write nothing when the models did not change; add the audit guard when the audit table appears."""
    script = directives[0]
    upgrade_ops = script.upgrade_ops
    if upgrade_ops is None or upgrade_ops.is_empty():
        directives.clear()
        return
    creates_audit = any(
        isinstance(item, ops.CreateTableOp) and item.table_name == AUDIT_TABLE for item in upgrade_ops.ops
    )
    if creates_audit:
        upgrade_ops.ops.append(AuditGuardOp(install=True))
        script.downgrade_ops.ops.insert(0, AuditGuardOp(install=False))


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite can only ALTER through table copies; harmless on PostgreSQL
        render_item=render_item,
        process_revision_directives=process_revision_directives,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if context.is_offline_mode() or connection is None:
    raise RuntimeError("run migrations with `keydesk migrate` or bot.store.migrate, not the alembic CLI")
run(connection)
