"""The append-only, hash-chained audit log: every decision, allowed or refused, leaves a row.

Each row's hash is SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of
{seq, at, actor, action, target, outcome, details, prev_hash}, with `at` as ISO 8601 UTC with
microseconds; the first row links to GENESIS_HASH. Sequence numbers are contiguous from 1, so an edit,
a deletion or a reordering inside the log breaks the chain at the first row touched. Truncating the
newest rows, or rewriting the whole tail consistently, is only visible against a head hash kept off
the box: export `head()` periodically and pass it to `verify(anchor=...)`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock, SystemClock, as_utc
from bot.secret import Secret
from bot.store import audit_repo
from bot.store.db import Database
from bot.store.models.audit import AuditRow

GENESIS_HASH = "0" * 64
EXPORT_FIELDS = ("seq", "at", "actor", "action", "target", "outcome", "details", "prev_hash", "hash")
PAGE = 500
_ACTION = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
_MASKED_SECRET = repr(Secret("-"))
ExportFormat = Literal["jsonl", "csv"]


class AuditOutcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def computed_hash(self) -> str:
        return chain_hash(
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            target=self.target,
            outcome=self.outcome,
            details=self.details,
            prev_hash=self.prev_hash,
        )

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EXPORT_FIELDS} | {
            "at": _iso(self.at),
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # rows that verified before the first break (all rows when ok)
    first_broken_seq: int | None
    reason: str
    head: str | None = None  # hash of the last row that verified


def chain_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    content = {
        "seq": seq,
        "at": _iso(at),
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": outcome,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()


@dataclass
class ChainChecker:
    """Feeds rows in seq order; stops at the first row that does not link, hash or follow on."""

    anchor: str | None = None
    checked: int = 0
    anchor_seen: bool = False
    _prev_hash: str = GENESIS_HASH
    _broken: tuple[int, str] | None = field(default=None, repr=False)

    def feed(self, entry: AuditEntry) -> bool:
        if self._broken is not None:
            return False
        problem = self._problem(entry)
        if problem is not None:
            self._broken = (entry.seq, problem)
            return False
        self.checked += 1
        self._prev_hash = entry.hash
        self.anchor_seen = self.anchor_seen or entry.hash == self.anchor
        return True

    def _problem(self, entry: AuditEntry) -> str | None:
        expected_seq = self.checked + 1
        if entry.seq != expected_seq:
            return f"expected seq {expected_seq} here, found {entry.seq}: rows deleted or reordered"
        if entry.prev_hash != self._prev_hash:
            return "prev_hash does not match the previous row's hash: a row before it was removed or changed"
        if entry.computed_hash() != entry.hash:
            return "hash does not match the row's content: the row was edited"
        return None

    def result(self) -> VerifyResult:
        head = self._prev_hash if self.checked else None
        if self._broken is not None:
            seq, reason = self._broken
            return VerifyResult(False, self.checked, seq, reason, head)
        if self.anchor is not None and not self.anchor_seen:
            reason = "the anchored head hash is not in the log: rows were truncated or rewritten"
            return VerifyResult(False, self.checked, None, reason, head)
        return VerifyResult(True, self.checked, None, "chain intact", head)


def check_chain(entries: Iterable[AuditEntry], *, anchor: str | None = None) -> VerifyResult:
    """Verify rows from anywhere (the database, or an export off the box)."""
    checker = ChainChecker(anchor=anchor)
    for entry in entries:
        if not checker.feed(entry):
            break
    return checker.result()


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        action: str,
        *,
        actor: str,
        target: str | None = None,
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
        session: AsyncSession | None = None,
    ) -> AuditEntry:
        """Append one row. With `session` it joins the caller's transaction (and holds the chain lock,
        serialising other audit writers, until that transaction ends: commit it before slow calls)."""
        _refuse_secrets({"action": action, "actor": actor, "target": target, "details": details})
        values = {
            "action": _checked_action(action),
            "actor": _checked_text("actor", actor, 128),
            "target": _checked_text("target", target, 256) if target else None,
            "outcome": AuditOutcome(outcome).value,
            "details": _json_normalised(details or {}),
        }
        if session is not None:
            return await self._append(session, values)
        async with self._db.session() as own:
            return await self._append(own, values)

    async def _append(self, session: AsyncSession, values: dict[str, Any]) -> AuditEntry:
        await audit_repo.lock_chain(session)
        last = await audit_repo.head(session)
        seq = 1 if last is None else last.seq + 1
        prev_hash = GENESIS_HASH if last is None else last.hash
        at = self._clock.now()
        digest = chain_hash(seq=seq, at=at, prev_hash=prev_hash, **values)
        row = values | {"seq": seq, "at": at, "prev_hash": prev_hash, "hash": digest}
        await audit_repo.append(session, row)
        return AuditEntry(**row)

    async def entries(
        self, *, action_prefix: str | None = None, target: str | None = None
    ) -> list[AuditEntry]:
        async with self._db.read() as session:
            rows = await audit_repo.search(session, action_prefix=action_prefix, target=target)
        return [_to_entry(row) for row in rows]

    async def head(self) -> str | None:
        """The latest hash: export it off the box periodically, then verify against it."""
        async with self._db.read() as session:
            last = await audit_repo.head(session)
        return None if last is None else last.hash

    async def verify(self, *, anchor: str | None = None) -> VerifyResult:
        checker = ChainChecker(anchor=anchor)
        async for entry in self._all():
            if not checker.feed(entry):
                break
        return checker.result()

    async def export(self, out: TextIO, fmt: ExportFormat) -> int:
        """Write every row in seq order; the output verifies on its own (`load_export` + `check_chain`)."""
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown export format {fmt!r}")
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n") if fmt == "csv" else None
        if writer is not None:
            writer.writeheader()
        written = 0
        async for entry in self._all():
            record = entry.as_json()
            if writer is None:
                out.write(_canonical(record) + "\n")
            else:
                writer.writerow(
                    record | {"details": _canonical(record["details"]), "target": entry.target or ""}
                )
            written += 1
        return written

    async def _all(self) -> AsyncIterator[AuditEntry]:
        after: int | None = None  # from the very first row, even one forged with seq 0 or below
        while True:
            async with self._db.read() as session:
                rows = await audit_repo.page(session, after_seq=after, limit=PAGE)
            for row in rows:
                yield _to_entry(row)
            if len(rows) < PAGE:
                return
            after = rows[-1].seq


def load_export(source: TextIO, fmt: ExportFormat) -> list[AuditEntry]:
    """Read an export back into entries (for verifying it away from the database)."""
    return list(_read_jsonl(source) if fmt == "jsonl" else _read_csv(source))


def _read_jsonl(source: TextIO) -> Iterator[AuditEntry]:
    for line in source:
        if line.strip():
            yield _from_record(json.loads(line))


def _read_csv(source: TextIO) -> Iterator[AuditEntry]:
    for record in csv.DictReader(source):
        yield _from_record(
            record | {"details": json.loads(record["details"]), "target": record["target"] or None}
        )


def _from_record(record: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=int(record["seq"]),
        at=as_utc(datetime.fromisoformat(record["at"])),
        actor=record["actor"],
        action=record["action"],
        target=record["target"],
        outcome=record["outcome"],
        details=record["details"],
        prev_hash=record["prev_hash"],
        hash=record["hash"],
    )


async def cli_verify(db: Database, anchor: str | None = None) -> int:
    """`keydesk audit verify`: one line on stdout; exit 0 when the chain holds, 1 at the first break."""
    result = await AuditLog(db, SystemClock()).verify(anchor=anchor)
    if result.ok:
        print(f"audit log OK: {result.checked} entries verified, head {result.head or '(empty)'}")
        return 0
    where = f"seq {result.first_broken_seq}" if result.first_broken_seq is not None else "the head"
    print(f"audit log BROKEN at {where}: {result.reason} ({result.checked} entries verified before it)")
    return 1


async def cli_export(db: Database, fmt: str, out: TextIO) -> int:
    """`keydesk audit export --format jsonl|csv`: rows to `out`, a count on stderr."""
    if fmt not in ("jsonl", "csv"):
        print(f"unknown format {fmt!r}: use jsonl or csv", file=sys.stderr)
        return 2
    export_fmt: ExportFormat = "jsonl" if fmt == "jsonl" else "csv"
    written = await AuditLog(db, SystemClock()).export(out, export_fmt)
    print(f"exported {written} audit entries as {fmt}", file=sys.stderr)
    return 0


def _to_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _refuse_secrets(value: Any, path: str = "audit") -> None:
    """Secrets never reach the audit: neither a Secret itself nor one formatted into a string."""
    if isinstance(value, Secret):
        raise TypeError(f"{path} holds a Secret; secrets must never be written to the audit log")
    if isinstance(value, str) and _MASKED_SECRET in value:
        raise TypeError(f"{path} holds a formatted Secret; secrets must never be written to the audit log")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_secrets(key, f"{path} key")
            _refuse_secrets(item, f"{path}.{key}")
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            _refuse_secrets(item, f"{path}[{index}]")


def _checked_action(action: str) -> str:
    if len(action) > 128 or not _ACTION.match(action):
        raise ValueError(f"audit action must be dotted lowercase words, got {action[:40]!r}")
    return action


def _checked_text(name: str, value: str, limit: int) -> str:
    if not value or len(value) > limit:
        raise ValueError(f"audit {name} must be 1..{limit} characters")
    return value


def _json_normalised(details: Mapping[str, Any]) -> dict[str, Any]:
    """What the database will hand back, so the hash computed now is the hash verified later."""
    result: dict[str, Any] = json.loads(_canonical(dict(details)))
    return result


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _iso(at: datetime) -> str:
    return as_utc(at).isoformat(timespec="microseconds")
