"""PostgreSQL-only schema pieces that autogenerate cannot see: the audit log's append-only guard.

Revisions call `install_audit_guard()` / `remove_audit_guard()`; when autogenerate creates the audit
table, env.py adds those calls to the new revision by itself (through `AuditGuardOp`), so regenerating
a revision never loses the guard.
"""

from __future__ import annotations

from alembic import op
from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import MigrateOperation

from bot.store.models.audit import APPEND_ONLY_GUARD

AUDIT_TABLE = "audit_log"
_REMOVE = (
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP FUNCTION IF EXISTS audit_log_refuse_change()",
)


def install_audit_guard() -> None:
    """Triggers that refuse UPDATE, DELETE and TRUNCATE on the audit log (PostgreSQL; no-op elsewhere)."""
    if op.get_bind().dialect.name == "postgresql":
        for statement in APPEND_ONLY_GUARD:
            op.execute(statement)


def remove_audit_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _REMOVE:
            op.execute(statement)


class AuditGuardOp(MigrateOperation):
    """Autogenerate-only marker: renders as a call to install_audit_guard() or remove_audit_guard()."""

    def __init__(self, *, install: bool) -> None:
        self.install = install

    def reverse(self) -> AuditGuardOp:
        return AuditGuardOp(install=not self.install)


@renderers.dispatch_for(AuditGuardOp)
def _render_audit_guard(autogen_context: AutogenContext, operation: AuditGuardOp) -> str:
    autogen_context.imports.add(
        "from bot.store.migrations.guards import install_audit_guard, remove_audit_guard"
    )
    return "install_audit_guard()" if operation.install else "remove_audit_guard()"
