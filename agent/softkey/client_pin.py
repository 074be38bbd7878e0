"""authenticatorClientPIN (0x06): retries, key agreement, set/change PIN, PIN tokens with permissions."""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ec
from fido2.ctap import CtapError

from agent.softkey.pinuv import ProtocolV1, cose_p256, protocol
from agent.softkey.state import Perm

if TYPE_CHECKING:
    from agent.softkey.authenticator import Presence, SoftAuthenticator

ERR = CtapError.ERR
PROTOCOL, SUBCOMMAND, KEY_AGREEMENT, PIN_UV_AUTH_PARAM, NEW_PIN_ENC, PIN_HASH_ENC = 1, 2, 3, 4, 5, 6
PERMISSIONS, RP_ID = 9, 10
SUPPORTED_PERMISSIONS = Perm.MC | Perm.GA | Perm.CM | Perm.ACFG


def handle(key: SoftAuthenticator, params: dict[int, Any], presence: Presence) -> dict[int, Any] | None:
    sub = params.get(SUBCOMMAND)
    if sub == 0x01:
        return {3: key.pin.retries, 4: key.pin.failures_since_boot >= key.profile.retries_per_boot}
    if sub == 0x02:
        protocol(params.get(PROTOCOL), key.pin_protocols)
        return {1: cose_p256(key.key_agreement.public_key(), -25)}
    if sub == 0x03:
        _set_pin(key, params)
        return None
    if sub == 0x04:
        _change_pin(key, params)
        return None
    if sub == 0x05:
        return _token(key, params, int(Perm.MC | Perm.GA), None)
    if sub == 0x09 and key.profile.ctap21:
        return _token_with_permissions(key, params)
    raise CtapError(ERR.INVALID_SUBCOMMAND)


def _require(params: dict[int, Any], *keys: int) -> None:
    if any(params.get(k) is None for k in keys):
        raise CtapError(ERR.MISSING_PARAMETER)


def _shared(key: SoftAuthenticator, params: dict[int, Any]) -> tuple[ProtocolV1, bytes]:
    proto = protocol(params.get(PROTOCOL), key.pin_protocols)
    return proto, proto.shared_secret(key.key_agreement, params.get(KEY_AGREEMENT))


def _set_pin(key: SoftAuthenticator, params: dict[int, Any]) -> None:
    _require(params, PROTOCOL, KEY_AGREEMENT, PIN_UV_AUTH_PARAM, NEW_PIN_ENC)
    if key.pin.is_set:
        raise CtapError(ERR.NOT_ALLOWED)
    proto, shared = _shared(key, params)
    if not proto.verify(shared, params[NEW_PIN_ENC], params[PIN_UV_AUTH_PARAM]):
        raise CtapError(ERR.PIN_AUTH_INVALID)
    pin = _new_pin(key, proto.decrypt(shared, params[NEW_PIN_ENC]))
    _store_pin(key, pin)


def _change_pin(key: SoftAuthenticator, params: dict[int, Any]) -> None:
    _require(params, PROTOCOL, KEY_AGREEMENT, PIN_UV_AUTH_PARAM, NEW_PIN_ENC, PIN_HASH_ENC)
    if not key.pin.is_set:
        raise CtapError(ERR.PIN_NOT_SET)
    if key.pin.retries == 0:
        raise CtapError(ERR.PIN_BLOCKED)
    proto, shared = _shared(key, params)
    message = params[NEW_PIN_ENC] + params[PIN_HASH_ENC]
    if not proto.verify(shared, message, params[PIN_UV_AUTH_PARAM]):
        raise CtapError(ERR.PIN_AUTH_INVALID)
    _check_pin(key, proto.decrypt(shared, params[PIN_HASH_ENC]))
    pin = _new_pin(key, proto.decrypt(shared, params[NEW_PIN_ENC]))
    if key.pin.force_change and _hash(pin) == key.pin.pin_hash:
        raise CtapError(ERR.PIN_POLICY_VIOLATION)  # a forced change needs a different PIN
    _store_pin(key, pin)


def _token_with_permissions(key: SoftAuthenticator, params: dict[int, Any]) -> dict[int, Any]:
    permissions = int(params.get(PERMISSIONS) or 0)
    if not permissions:
        raise CtapError(ERR.MISSING_PARAMETER)
    if permissions & ~SUPPORTED_PERMISSIONS:
        raise CtapError(ERR.UNAUTHORIZED_PERMISSION)
    return _token(key, params, permissions, params.get(RP_ID))


def _token(
    key: SoftAuthenticator, params: dict[int, Any], permissions: int, rp_id: str | None
) -> dict[int, Any]:
    _require(params, PROTOCOL, KEY_AGREEMENT, PIN_HASH_ENC)
    if not key.pin.is_set:
        raise CtapError(ERR.PIN_NOT_SET)
    proto, shared = _shared(key, params)
    _check_pin(key, proto.decrypt(shared, params[PIN_HASH_ENC]))
    if key.pin.force_change:
        raise CtapError(ERR.PIN_POLICY_VIOLATION)  # the trap: nothing works until the PIN is changed
    key.token.regenerate()
    key.token.permissions = permissions
    key.token.rp_id = rp_id
    return {2: proto.encrypt(shared, key.token.value)}


def _check_pin(key: SoftAuthenticator, pin_hash: bytes) -> None:
    """Compare a PIN hash, counting tries: 3 misses per power-up, `max_pin_retries` in all."""
    if key.pin.retries == 0:
        raise CtapError(ERR.PIN_BLOCKED)
    if key.pin.failures_since_boot >= key.profile.retries_per_boot:
        raise CtapError(ERR.PIN_AUTH_BLOCKED)
    key.pin.retries -= 1
    if key.pin.pin_hash is not None and hmac.compare_digest(pin_hash[:16], key.pin.pin_hash):
        key.pin.retries = key.profile.max_pin_retries
        key.pin.failures_since_boot = 0
        return
    key.key_agreement = ec.generate_private_key(ec.SECP256R1())
    key.pin.failures_since_boot += 1
    if key.pin.retries == 0:
        raise CtapError(ERR.PIN_BLOCKED)
    if key.pin.failures_since_boot >= key.profile.retries_per_boot:
        raise CtapError(ERR.PIN_AUTH_BLOCKED)
    raise CtapError(ERR.PIN_INVALID)


def _new_pin(key: SoftAuthenticator, padded: bytes) -> str:
    if len(padded) < 64:
        raise CtapError(ERR.INVALID_PARAMETER)
    raw = padded.split(b"\0", 1)[0]
    try:
        pin = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CtapError(ERR.PIN_POLICY_VIOLATION) from exc
    if len(raw) > 63 or len(pin) < key.pin.min_length:
        raise CtapError(ERR.PIN_POLICY_VIOLATION)
    return pin


def _hash(pin: str) -> bytes:
    return sha256(pin.encode("utf-8")).digest()[:16]


def _store_pin(key: SoftAuthenticator, pin: str) -> None:
    key.pin.pin_hash = _hash(pin)
    key.pin.code_points = len(pin)
    key.pin.retries = key.profile.max_pin_retries
    key.pin.force_change = False
    key.token.regenerate()
