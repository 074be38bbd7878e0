"""The wire protocol between the desk agent and the keydesk server: signed, bound, short-lived envelopes.

Pure (no I/O, no fido2, no bot): both sides import it. Every message either way is an `Envelope`
signed with Ed25519 over its canonical JSON. The signature covers who it is for (agent id), what it is
about (job id, kind, target), a random nonce and a validity window of at most five minutes. Checking
the nonce against the ones already seen is the receiver's job (it owns the storage).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VERSION = 1
MAX_LIFETIME = timedelta(minutes=5)
# Clocks at desks drift. A receiver accepts an envelope from CLOCK_SKEW before its `issued_at` until
# CLOCK_SKEW after its `expires_at` (by the receiver's clock). The signed window itself never exceeds
# MAX_LIFETIME, nonces are kept until the grace has passed too, so a replay is still refused.
CLOCK_SKEW = timedelta(minutes=2)
AUTH_HEADER = "X-Keydesk-Agent-Auth"
NONCE_BYTES = 16


class JobKind(StrEnum):
    INSPECT = "inspect"
    RESET = "reset"
    PROVISION = "provision"


class Direction(StrEnum):
    """Which way an envelope travels; a job can never be replayed as a result and vice versa."""

    JOB = "job"  # server -> agent
    RESULT = "result"  # agent -> server
    POLL = "poll"  # agent -> server: "any work for me?"
    PAIR = "pair"  # agent -> server: proof that the pairing request holds the private key


class ProtocolError(Exception):
    """A message was refused; `reason` is a short stable word for audit rows and alerts."""

    reason = "malformed"


class Malformed(ProtocolError):
    reason = "malformed"


class Tampered(ProtocolError):
    reason = "tampered"


class Expired(ProtocolError):
    reason = "expired"


class ClockSkew(Expired):
    """Issued further in the future than the skew allows: the sender's clock is ahead."""

    reason = "clock_skew"


class WrongAgent(ProtocolError):
    reason = "wrong_agent"


class Replayed(ProtocolError):
    reason = "replayed"


@dataclass(frozen=True)
class Envelope:
    direction: str
    agent_id: str
    job_id: str
    kind: str
    target: str  # the target's Entra object id, or "" when the job has none (inspect, reset)
    nonce: str
    issued_at: str  # ISO 8601 UTC
    expires_at: str
    body: dict[str, Any] = field(default_factory=dict)
    v: int = VERSION

    @property
    def expires(self) -> datetime:
        return _parse_time(self.expires_at)

    @property
    def issued(self) -> datetime:
        return _parse_time(self.issued_at)


@dataclass(frozen=True)
class Signed:
    envelope: Envelope
    signature: str  # base64url of the Ed25519 signature over canonical(envelope)

    def to_json(self) -> dict[str, Any]:
        return {"envelope": asdict(self.envelope), "signature": self.signature}

    def to_header(self) -> str:
        return b64(canonical(self.to_json()))


# --- canonical JSON and encodings -------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise Malformed("not base64url") from exc


def pairing_code_hash(code: str) -> str:
    """SHA-256 hex of a pairing code without spaces or dashes, upper-cased (how the server stores it)."""
    from hashlib import sha256

    return sha256("".join(ch for ch in code if ch not in " -\t").upper().encode()).hexdigest()


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime in an envelope")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise Malformed("bad timestamp") from exc
    if at.tzinfo is None:
        raise Malformed("timestamp without a time zone")
    return at.astimezone(UTC)


# --- keys -------------------------------------------------------------------------------------


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def load_public_key(text: str) -> Ed25519PublicKey:
    raw = unb64(text)
    if len(raw) != 32:
        raise Malformed("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def fingerprint(public_key: str) -> str:
    """A short, human-comparable form of a public key (first 16 hex digits of its SHA-256)."""
    from hashlib import sha256

    digest = sha256(unb64(public_key)).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


# --- building, signing, verifying -------------------------------------------------------------


def envelope(
    direction: Direction,
    *,
    agent_id: str,
    now: datetime,
    lifetime: timedelta = MAX_LIFETIME,
    job_id: str = "",
    kind: str = "",
    target: str = "",
    body: dict[str, Any] | None = None,
    nonce: str | None = None,
) -> Envelope:
    if lifetime > MAX_LIFETIME or lifetime <= timedelta(0):
        raise ValueError("an envelope lives more than 0 and at most 5 minutes")
    return Envelope(
        direction=direction.value,
        agent_id=agent_id,
        job_id=job_id,
        kind=kind,
        target=target,
        nonce=nonce or new_nonce(),
        issued_at=iso(now),
        expires_at=iso(now + lifetime),
        body=dict(body or {}),
    )


def sign(env: Envelope, key: Ed25519PrivateKey) -> Signed:
    return Signed(env, b64(key.sign(canonical(asdict(env)))))


def parse(data: Any) -> Signed:
    """A Signed from decoded JSON; anything of the wrong shape is Malformed (never a KeyError)."""
    if not isinstance(data, dict) or not isinstance(data.get("envelope"), dict):
        raise Malformed("no envelope")
    raw = data["envelope"]
    signature = data.get("signature")
    if not isinstance(signature, str):
        raise Malformed("no signature")
    names = {f for f in Envelope.__dataclass_fields__}
    if set(raw) != names:
        raise Malformed("unexpected envelope fields")
    text_fields = names - {"body", "v"}
    if not all(isinstance(raw[f], str) and len(raw[f]) <= 256 for f in text_fields):
        raise Malformed("envelope fields must be short strings")
    if not isinstance(raw["body"], dict) or raw["v"] != VERSION:
        raise Malformed("bad body or version")
    return Signed(Envelope(**raw), signature)


def parse_header(value: str) -> Signed:
    try:
        data = json.loads(unb64(value))
    except ValueError as exc:
        raise Malformed("auth header is not JSON") from exc
    return parse(data)


def verify(
    signed: Signed,
    public_key: Ed25519PublicKey,
    *,
    now: datetime,
    direction: Direction,
    agent_id: str | None = None,
) -> Envelope:
    """Check signature, direction, binding to `agent_id`, and the validity window; return the envelope.

    Order matters: nothing in the envelope is trusted before the signature checks out.
    """
    env = signed.envelope
    try:
        public_key.verify(unb64(signed.signature), canonical(asdict(env)))
    except InvalidSignature:
        raise Tampered("bad signature") from None
    if env.direction != direction.value:
        raise Tampered(f"a {env.direction} envelope where a {direction.value} was expected")
    if agent_id is not None and env.agent_id != agent_id:
        raise WrongAgent("envelope is for another agent")
    issued, expires = env.issued, env.expires
    if expires - issued > MAX_LIFETIME or expires <= issued:
        raise Expired("validity window longer than five minutes")
    if issued > now + CLOCK_SKEW:
        raise ClockSkew("issued in the future")
    if now >= expires + CLOCK_SKEW:
        raise Expired("envelope expired")
    return env


def accepted_until(env: Envelope) -> datetime:
    """The last moment a receiver may accept `env` (its expiry plus the clock-skew grace): keep its
    nonce at least this long."""
    return env.expires + CLOCK_SKEW


def clock_offset(local: datetime, server_time: str | None) -> float | None:
    """Seconds this machine's clock is ahead of the server's (negative: behind), from a server's
    `server_time` answer; None when the answer carries none."""
    if not server_time:
        return None
    try:
        remote = _parse_time(server_time)
    except Malformed:
        return None
    return (local - remote).total_seconds()
