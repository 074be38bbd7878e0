"""Random PINs of keys prepared for pickup: sealed at rest, shown once to their owner, then destroyed.

The seal key (32 random bytes, AES-256-GCM) lives in the file KEYDESK_PIN_SEAL_KEY_FILE, created once
with owner-only permissions like the agent signing key (bot/services/desk_keys.py), never in the
database. Per provisioning the server makes an X25519 key pair: the public half goes to the desk in the
job, the private half rests wrapped with the seal key in `desk_sealed_pins`; the agent seals the PIN to
the public half (agent/sealed_pin.py). Deleting the row destroys the PIN for good, which happens when
its owner reveals it or, at the latest, 24 hours after the row was made (a durable deadline).
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from agent import sealed_pin
from bot.deadlines import Deadline
from bot.logs import get_logger
from bot.secret import Secret
from bot.services.runtime import Runtime
from bot.store.models.desk_provisioning import SealedPin

log = get_logger(__name__)

DESTROY_DEADLINE = "desk.pin_destroy"
KEEP_FOR = timedelta(hours=24)
KEY_BYTES = 32
NONCE_BYTES = 12

_cache: dict[Path, bytes] = {}
_lock = threading.Lock()


class PinUnavailable(Exception):
    """No sealed PIN for this request (never made, already revealed, or destroyed after 24 h)."""


# --- the seal key file ---------------------------------------------------------------------------
def seal_key(path: Path) -> bytes:
    """Load the seal key, creating it (0600) the first time."""
    path = path.expanduser().resolve()
    with _lock:
        found = _cache.get(path)
        if found is None:
            found = _load_or_create(path)
            _cache[path] = found
        return found


def _load_or_create(path: Path) -> bytes:
    try:
        return _checked(path.read_bytes())
    except FileNotFoundError:
        pass
    key = os.urandom(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another replica won the race: use its key
        return _checked(path.read_bytes())
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    os.chmod(path, 0o600)
    log.info("desk.pin_seal_key.created", path=str(path))
    return key


def _checked(raw: bytes) -> bytes:
    if len(raw) != KEY_BYTES:
        raise RuntimeError("the PIN seal key file must hold exactly 32 bytes")
    return raw


def _aad(request_id: str) -> bytes:
    return f"keydesk-pin-key|{request_id}".encode()


def _wrap(rt: Runtime, request_id: str, private: X25519PrivateKey) -> bytes:
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(seal_key(rt.settings.pin_seal_key_file)).encrypt(nonce, raw, _aad(request_id))


def _unwrap(rt: Runtime, request_id: str, wrapped: bytes) -> X25519PrivateKey:
    nonce, box = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
    try:
        raw = AESGCM(seal_key(rt.settings.pin_seal_key_file)).decrypt(nonce, box, _aad(request_id))
    except InvalidTag:
        raise PinUnavailable("the sealed PIN does not open with this server's seal key") from None
    return X25519PrivateKey.from_private_bytes(raw)


# --- the life of one sealed PIN ------------------------------------------------------------------
async def prepare(rt: Runtime, session: AsyncSession, request_id: str, target_slack_id: str) -> str:
    """Make the one-time key pair for a pickup key; return the public half for the desk's job."""
    private = X25519PrivateKey.generate()
    now = rt.clock.now()
    session.add(
        SealedPin(
            request_id=request_id,
            target_slack_id=target_slack_id,
            wrapped_key=_wrap(rt, request_id, private),
            created_at=now,
            destroy_at=now + KEEP_FOR,
        )
    )
    await session.flush()
    await rt.deadlines.schedule(
        DESTROY_DEADLINE,
        now + KEEP_FOR,
        {"request_id": request_id},
        key=f"desk-pin:{request_id}",
        replace=True,
        session=session,
    )
    return sealed_pin.public_key_text(private)


async def keep(rt: Runtime, request_id: str, sealed: Any, bound_to: bytes) -> None:
    """Store the agent's sealed PIN after checking it opens (and for this job); PinUnavailable if not."""
    async with rt.db.session() as session:
        row = await session.get(SealedPin, request_id, populate_existing=True)
        if row is None:
            raise PinUnavailable("no sealed PIN was prepared for this request")
        try:
            sealed_pin.open_sealed(sealed, _unwrap(rt, request_id, row.wrapped_key), bound_to)
        except sealed_pin.SealError as exc:
            raise PinUnavailable(f"the desk's sealed PIN {exc}") from None
        row.sealed_pin = {"sealed": sealed, "bound_to": bound_to.decode()}


async def set_message(rt: Runtime, request_id: str, channel: str, ts: str) -> None:
    async with rt.db.session() as session:
        row = await session.get(SealedPin, request_id, populate_existing=True)
        if row is not None:
            row.dm_channel, row.dm_ts = channel, ts


async def load(rt: Runtime, request_id: str) -> SealedPin | None:
    async with rt.db.read() as session:
        return await session.get(SealedPin, request_id, populate_existing=True)


def open_pin(rt: Runtime, row: SealedPin) -> Secret:
    """The PIN, for the one modal that shows it. PinUnavailable while the desk has not sealed it yet."""
    stored = row.sealed_pin or {}
    if not stored.get("sealed"):
        raise PinUnavailable("the desk has not returned the PIN yet")
    private = _unwrap(rt, row.request_id, row.wrapped_key)
    try:
        return Secret(sealed_pin.open_sealed(stored["sealed"], private, str(stored["bound_to"]).encode()))
    except sealed_pin.SealError:
        raise PinUnavailable("the sealed PIN does not open") from None


async def destroy(
    rt: Runtime,
    request_id: str,
    *,
    reason: str,
    actor: str = "system",
    session: AsyncSession | None = None,
) -> bool:
    """Delete the sealed PIN and its key (idempotent); True when there was one to delete.

    Given a `session`, the deletion commits with the caller's own change (a failed provisioning
    closes its request and destroys its PIN in one transaction: never one without the other)."""
    if session is None:
        async with rt.db.session() as own:
            return await _destroy_in(rt, own, request_id, reason, actor)
    return await _destroy_in(rt, session, request_id, reason, actor)


async def _destroy_in(rt: Runtime, session: AsyncSession, request_id: str, reason: str, actor: str) -> bool:
    result = await session.execute(
        delete(SealedPin)
        .where(SealedPin.request_id == request_id)
        .execution_options(synchronize_session=False)
    )
    gone = bool(result.rowcount)  # type: ignore[attr-defined]
    await rt.deadlines.cancel(f"desk-pin:{request_id}", session=session)
    if gone:
        await rt.audit.record(
            "desk.pin.destroyed",
            actor=actor,
            target=f"request:{request_id}",
            details={"request_id": request_id, "reason": reason},
            session=session,
        )
    return gone


def register_deadlines(rt: Runtime, on_expired: Any) -> None:
    """`on_expired(rt, request_id)` runs after the 24 h destruction (to update the person's DM)."""

    async def handler(deadline: Deadline) -> None:
        request_id = str(deadline.payload["request_id"])
        row = await load(rt, request_id)
        if await destroy(rt, request_id, reason="expired"):
            await on_expired(rt, request_id, row)

    rt.deadlines.register(DESTROY_DEADLINE, handler)
