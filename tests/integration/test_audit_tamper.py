"""Tampering with audit rows in the database: PostgreSQL refuses it; the verifier catches it anyway."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.audit import AuditLog, chain_hash, cli_verify
from bot.clock import FrozenClock
from bot.store.db import Database

needs_postgres = pytest.mark.skipif(
    not os.environ.get("KEYDESK_TEST_DATABASE_URL"), reason="needs KEYDESK_TEST_DATABASE_URL (PostgreSQL)"
)


async def tamper(db: Database, *statements: str) -> None:
    """Raw SQL as an attacker with database access would run it (PostgreSQL: after disabling the guard)."""
    async with db.session() as session:
        if db.dialect == "postgresql":
            await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        for statement in statements:
            await session.execute(text(statement))
        if db.dialect == "postgresql":
            await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


@pytest.fixture
async def audit(database: Database, clock: FrozenClock) -> AuditLog:
    log = AuditLog(database, clock)
    async with database.session() as session:  # one transaction: several rows chain inside it too
        for number in range(1, 11):
            clock.advance(2)
            await log.record(
                "tap.request.created",
                actor=f"slack:U{number}",
                target=f"entra:{number}",
                details={"n": number},
                session=session,
            )
    assert (await log.verify()).ok
    return log


# case: (raw SQL, first broken seq, rows verified before the break)
TAMPERING: dict[str, tuple[list[str], int, int]] = {
    "edit-details": (["UPDATE audit_log SET details = '{\"n\": 500}' WHERE seq = 5"], 5, 4),
    "edit-actor": (["UPDATE audit_log SET actor = 'slack:UEVIL' WHERE seq = 3"], 3, 2),
    "edit-hash": ([f"UPDATE audit_log SET hash = '{'ab' * 32}' WHERE seq = 7"], 7, 6),
    "edit-prev-hash": ([f"UPDATE audit_log SET prev_hash = '{'cd' * 32}' WHERE seq = 4"], 4, 3),
    "delete-middle": (["DELETE FROM audit_log WHERE seq = 5"], 6, 4),
    "delete-first": (["DELETE FROM audit_log WHERE seq = 1"], 2, 0),
    "swap-rows": (
        [
            "UPDATE audit_log SET seq = -1 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = -1",
        ],
        3,
        2,
    ),
    "insert-before-first": (
        [
            "INSERT INTO audit_log (seq, at, actor, action, target, outcome, details, prev_hash, hash) "
            f"VALUES (0, '2026-01-01 00:00:00', 'slack:UEVIL', 'tap.issued', NULL, 'ok', '{{}}', '{'0' * 64}', "
            f"'{'ef' * 32}')"
        ],
        0,
        0,
    ),
    "renumber-after-delete": (
        [
            "DELETE FROM audit_log WHERE seq = 5",
            *(f"UPDATE audit_log SET seq = {n - 1} WHERE seq = {n}" for n in range(6, 11)),
        ],
        5,
        4,
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_tampering_is_detected_at_the_first_row_touched(
    database: Database, audit: AuditLog, case: str
) -> None:
    statements, first_broken, verified_before = TAMPERING[case]
    await tamper(database, *statements)
    result = await audit.verify()
    assert not result.ok
    assert (result.first_broken_seq, result.checked) == (first_broken, verified_before)
    assert result.reason


async def test_a_consistently_rehashed_edit_breaks_the_next_link(database: Database, audit: AuditLog) -> None:
    """An attacker who recomputes the edited row's own hash still breaks the row after it."""
    [row5] = [entry for entry in await audit.entries() if entry.seq == 5]
    forged = chain_hash(
        seq=5,
        at=row5.at,
        actor=row5.actor,
        action=row5.action,
        target=row5.target,
        outcome="refused",
        details=row5.details,
        prev_hash=row5.prev_hash,
    )
    await tamper(database, f"UPDATE audit_log SET outcome = 'refused', hash = '{forged}' WHERE seq = 5")
    result = await audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 6)
    assert "prev_hash" in result.reason


async def test_a_harmless_rewrite_keeps_the_chain(database: Database, audit: AuditLog) -> None:
    """The verifier is not trigger-happy: rewriting a value with itself changes nothing."""
    await tamper(database, "UPDATE audit_log SET actor = actor, details = details WHERE seq = 5")
    assert (await audit.verify()).ok


async def test_cli_verify_names_the_first_broken_row(
    database: Database, audit: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    await tamper(database, "DELETE FROM audit_log WHERE seq = 4")
    assert await cli_verify(database) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("audit log BROKEN at seq 5: expected seq 4 here, found 5")
    assert line.endswith("(3 entries verified before it)")


@pytest.mark.postgres
@needs_postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET details = '{}' WHERE seq = 5",
        "DELETE FROM audit_log WHERE seq = 10",
        "TRUNCATE audit_log",
    ],
    ids=["update", "delete", "truncate"],
)
async def test_postgres_refuses_changes_to_written_rows(
    database: Database, audit: AuditLog, statement: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.session() as session:
            await session.execute(text(statement))
    result = await audit.verify()
    assert (result.ok, result.checked) == (True, 10)
