"""The audit log: one verifiable chain, filters, exports, refusing secrets, concurrent writers."""

from __future__ import annotations

import asyncio
import io
import itertools
from typing import Literal

import pytest

import bot.audit
from bot.audit import GENESIS_HASH, AuditLog, check_chain, cli_export, cli_verify, load_export
from bot.clock import FrozenClock
from bot.secret import Secret
from bot.store.db import Database


@pytest.fixture
def audit(database: Database, clock: FrozenClock) -> AuditLog:
    return AuditLog(database, clock)


async def record_some(audit: AuditLog, clock: FrozenClock, count: int) -> None:
    for number in range(count):
        clock.advance(1.5)
        await audit.record(
            "tap.request.created" if number % 2 else "tap.request.approved",
            actor=f"slack:U{number:04d}",
            target=f"entra:{number % 3}",
            outcome="ok" if number % 5 else "refused",
            details={"request": number, "note": "schön, ünïcödé", "nested": {"b": [1, 2.5, None], "a": True}},
        )


async def test_the_chain_verifies_after_many_entries(
    audit: AuditLog, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.audit, "PAGE", 7)  # verification pages through the log
    await record_some(audit, clock, 40)
    result = await audit.verify()
    assert (result.ok, result.checked, result.first_broken_seq) == (True, 40, None)

    entries = await audit.entries()
    assert [entry.seq for entry in entries] == list(range(1, 41))
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert result.head == entries[-1].hash == await audit.head()
    assert entries[3].details == {
        "request": 3,
        "note": "schön, ünïcödé",
        "nested": {"b": [1, 2.5, None], "a": True},
    }


async def test_an_empty_log_verifies(audit: AuditLog) -> None:
    result = await audit.verify()
    assert (result.ok, result.checked, result.head) == (True, 0, None)
    assert await audit.head() is None


async def test_record_returns_what_was_stored(audit: AuditLog, clock: FrozenClock) -> None:
    entry = await audit.record(
        "lostkey.method.deleted", actor="system", target="entra:abc", details={"aaguid": "x"}
    )
    [stored] = await audit.entries()
    assert stored == entry
    assert (entry.seq, entry.at, entry.outcome) == (1, clock.now(), "ok")
    assert entry.computed_hash() == entry.hash


async def test_entries_filter_by_action_prefix_and_target(audit: AuditLog) -> None:
    await audit.record("tap.request.created", actor="slack:U1", target="entra:1")
    await audit.record("tap.issued", actor="system", target="entra:2")
    await audit.record("tapx.other", actor="system", target="entra:1")
    await audit.record("lostkey.reported", actor="slack:U1", target="entra:1")

    assert [e.action for e in await audit.entries(action_prefix="tap.")] == [
        "tap.request.created",
        "tap.issued",
    ]
    assert [e.action for e in await audit.entries(target="entra:1")] == [
        "tap.request.created",
        "tapx.other",
        "lostkey.reported",
    ]
    assert [e.seq for e in await audit.entries(action_prefix="tap.", target="entra:1")] == [1]
    assert await audit.entries(action_prefix="ta_.") == []  # wildcards are matched literally


async def test_record_joins_the_callers_transaction(audit: AuditLog, database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await audit.record("tap.request.created", actor="slack:U1", session=session)
            raise RuntimeError("the state change failed, so its audit row must not stay")
    assert await audit.entries() == []
    async with database.session() as session:
        entry = await audit.record("tap.request.created", actor="slack:U1", session=session)
    assert entry.seq == 1
    assert (await audit.verify()).ok


@pytest.mark.parametrize(
    "details",
    [
        {"tap": Secret("Tap-7f3a91")},
        {"graph": {"response": [{"temporaryAccessPass": Secret("Tap-7f3a91")}]}},
        {"message": f"your pass is {Secret('Tap-7f3a91')}"},
        {Secret("Tap-7f3a91"): "as a key"},
    ],
    ids=["value", "nested", "formatted-into-text", "key"],
)
async def test_secrets_are_refused(audit: AuditLog, details: dict[object, object]) -> None:
    with pytest.raises(TypeError, match="Secret") as refused:
        await audit.record("tap.issued", actor="system", details=details)  # type: ignore[arg-type]
    assert "Tap-7f3a91" not in str(refused.value)
    assert await audit.entries() == []


async def test_a_secret_in_target_or_actor_is_refused(audit: AuditLog) -> None:
    with pytest.raises(TypeError):
        await audit.record("tap.issued", actor="system", target=f"{Secret('x')}")
    with pytest.raises(TypeError):
        await audit.record("tap.issued", actor=Secret("x"))  # type: ignore[arg-type]
    assert await audit.entries() == []


@pytest.mark.parametrize(
    ("action", "outcome"),
    [("Tap Request", "ok"), ("", "ok"), ("tap..issued", "ok"), ("tap.issued", "maybe")],
)
async def test_malformed_rows_are_refused(audit: AuditLog, action: str, outcome: str) -> None:
    with pytest.raises(ValueError):
        await audit.record(action, actor="system", outcome=outcome)
    assert await audit.entries() == []


async def test_details_that_json_cannot_hold_are_refused(audit: AuditLog) -> None:
    with pytest.raises(ValueError):
        await audit.record("x.y", actor="system", details={"ratio": float("nan")})
    with pytest.raises(TypeError):
        await audit.record("x.y", actor="system", details={"raw": b"bytes"})


async def test_concurrent_writers_on_two_engines_keep_one_chain(
    database_url: str, database: Database, clock: FrozenClock
) -> None:
    other_replica = Database(database_url)
    try:
        logs = [AuditLog(database, clock), AuditLog(other_replica, clock)]
        await asyncio.gather(
            *(
                logs[n % 2].record("desk.job.ran", actor=f"agent:desk-{n % 2}", details={"n": n})
                for n in range(50)
            )
        )
    finally:
        await other_replica.close()
    audit = AuditLog(database, clock)
    result = await audit.verify()
    assert (result.ok, result.checked) == (True, 50)
    entries = await audit.entries()
    assert sorted(entry.details["n"] for entry in entries) == list(range(50))
    assert len({entry.prev_hash for entry in entries}) == 50  # no two rows claim the same predecessor


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_exports_round_trip_and_verify_off_the_box(
    audit: AuditLog, clock: FrozenClock, fmt: Literal["jsonl", "csv"]
) -> None:
    await record_some(audit, clock, 12)
    await audit.record("system.started", actor="system")  # no target, no details
    out = io.StringIO()
    assert await audit.export(out, fmt) == 13

    exported = load_export(io.StringIO(out.getvalue()), fmt)
    assert exported == await audit.entries()
    assert check_chain(exported, anchor=await audit.head()).ok

    forged = out.getvalue().replace("slack:U0004", "slack:U0666")
    result = check_chain(load_export(io.StringIO(forged), fmt))
    assert (result.ok, result.first_broken_seq) == (False, 5)


async def test_an_anchored_head_catches_a_truncated_or_rewritten_tail(
    audit: AuditLog, clock: FrozenClock
) -> None:
    await record_some(audit, clock, 5)
    anchor = await audit.head()
    entries = await audit.entries()
    assert (await audit.verify(anchor=anchor)).ok
    # Without the newest row the rest still links; only the anchor kept off the box shows the loss.
    assert check_chain(entries[:-1]).ok
    truncated = check_chain(entries[:-1], anchor=anchor)
    assert not truncated.ok
    assert "anchored head" in truncated.reason


async def test_cli_verify_and_export(
    audit: AuditLog, clock: FrozenClock, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    await record_some(audit, clock, 3)
    assert await cli_verify(database) == 0
    assert f"audit log OK: 3 entries verified, head {await audit.head()}" in capsys.readouterr().out

    out = io.StringIO()
    assert await cli_export(database, "csv", out) == 0
    assert out.getvalue().splitlines()[0] == "seq,at,actor,action,target,outcome,details,prev_hash,hash"
    assert "exported 3 audit entries as csv" in capsys.readouterr().err
    assert await cli_export(database, "xml", io.StringIO()) == 2
