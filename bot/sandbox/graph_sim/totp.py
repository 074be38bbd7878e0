"""RFC 4226 HOTP / RFC 6238 TOTP, for validating hardware OATH token codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime

DIGITS = 6
_HASHES = {"hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}


def decode_secret(secret_base32: str) -> bytes:
    """Vendors print secrets in upper or lower case, sometimes grouped with spaces, usually unpadded."""
    cleaned = secret_base32.replace(" ", "").replace("-", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(key: bytes, counter: int, hash_function: str = "hmacsha1") -> str:
    digest = hmac.new(key, struct.pack(">Q", counter), _HASHES[hash_function]).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**DIGITS).zfill(DIGITS)


def time_step(at: datetime, interval: int) -> int:
    return int(at.timestamp()) // interval


def totp(secret_base32: str, at: datetime, interval: int = 30, hash_function: str = "hmacsha1") -> str:
    return hotp(decode_secret(secret_base32), time_step(at, interval), hash_function)


def matching_step(
    secret_base32: str,
    code: str,
    at: datetime,
    *,
    interval: int = 30,
    hash_function: str = "hmacsha1",
    window: int = 1,
) -> int | None:
    """The time step whose code equals `code` (tolerating `window` steps of clock drift), else None."""
    key = decode_secret(secret_base32)
    now = time_step(at, interval)
    for step in range(now - window, now + window + 1):
        if hmac.compare_digest(hotp(key, step, hash_function), code):
            return step
    return None
