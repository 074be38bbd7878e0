"""A random PIN sealed by the desk agent to a one-time public key of the server (X25519 + AES-GCM).

Why not send it in the clear inside the signed result: the server keeps job results in its database,
and a PIN must rest there only encrypted, and only until its owner saw it. So the server puts a fresh
X25519 public key in the provisioning job; the agent seals the PIN to it (ephemeral X25519, HKDF-SHA256,
AES-256-GCM, bound to the job and the target); the server keeps the matching private key wrapped with
its own seal key and throws it away on reveal or after 24 h. Without that private key the sealed PIN
left in the job's result is noise.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = 1
INFO = b"keydesk sealed pin v1"
MAX_SEALED_CHARS = 512


class SealError(Exception):
    """The sealed PIN is malformed, or was not sealed to this key and context."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str) or len(text) > MAX_SEALED_CHARS:
        raise SealError("malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise SealError("malformed") from None


def public_key_text(private: X25519PrivateKey) -> str:
    return _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def context(job_id: str, target: str) -> bytes:
    """What a sealed PIN is bound to: it opens only for this job and this person."""
    return f"keydesk-pin|{job_id}|{target}".encode()


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=INFO).derive(shared)


def seal(secret: str, recipient_text: str, bound_to: bytes) -> dict[str, Any]:
    """Seal `secret` to the server's one-time public key `recipient_text` (base64url X25519)."""
    recipient_raw = _unb64(recipient_text)
    try:
        recipient = X25519PublicKey.from_public_bytes(recipient_raw)
    except ValueError:
        raise SealError("malformed") from None
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _key(ephemeral.exchange(recipient), ephemeral_raw, recipient_raw)
    nonce = os.urandom(12)
    box = AESGCM(key).encrypt(nonce, secret.encode("utf-8"), bound_to)
    return {"v": VERSION, "epk": _b64(ephemeral_raw), "nonce": _b64(nonce), "box": _b64(box)}


def open_sealed(sealed: object, private: X25519PrivateKey, bound_to: bytes) -> str:
    """The secret inside `sealed`; SealError when it is malformed, tampered or meant for another job."""
    if not isinstance(sealed, dict) or sealed.get("v") != VERSION:
        raise SealError("malformed")
    ephemeral_raw, nonce, box = (_unb64(sealed.get(k)) for k in ("epk", "nonce", "box"))
    recipient_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
        plain = AESGCM(_key(shared, ephemeral_raw, recipient_raw)).decrypt(nonce, box, bound_to)
    except (ValueError, InvalidTag):
        raise SealError("does not open") from None
    return plain.decode("utf-8")
