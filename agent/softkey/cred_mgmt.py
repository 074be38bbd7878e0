"""authenticatorCredentialManagement (0x0A): metadata, enumerate RPs and credentials, delete, update user."""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from fido2 import cbor
from fido2.ctap import CtapError

from agent.softkey.pinuv import cose_p256
from agent.softkey.state import Credential, Enumeration, Perm

if TYPE_CHECKING:
    from agent.softkey.authenticator import Presence, SoftAuthenticator

ERR = CtapError.ERR
SUBCOMMAND, SUBCOMMAND_PARAMS, PIN_UV_PROTOCOL, PIN_UV_PARAM = 1, 2, 3, 4
METADATA, RPS_BEGIN, RPS_NEXT, CREDS_BEGIN, CREDS_NEXT, DELETE, UPDATE = range(1, 8)


def handle(key: SoftAuthenticator, params: dict[int, Any], presence: Presence) -> dict[int, Any] | None:
    sub = params.get(SUBCOMMAND)
    if sub in (RPS_NEXT, CREDS_NEXT):
        return _next(key, sub)
    if sub not in (METADATA, RPS_BEGIN, CREDS_BEGIN, DELETE, UPDATE):
        raise CtapError(ERR.INVALID_SUBCOMMAND)
    sub_params = params.get(SUBCOMMAND_PARAMS)
    if params.get(PIN_UV_PARAM) is None:
        raise CtapError(ERR.PUAT_REQUIRED)
    message = bytes([sub]) + (cbor.encode(sub_params) if sub_params is not None else b"")
    key.verify_token(params.get(PIN_UV_PROTOCOL), params[PIN_UV_PARAM], message, Perm.CM, unbound_only=True)
    if sub == METADATA:
        count = len(key.discoverable)
        return {1: count, 2: max(0, key.profile.capacity - count)}
    if sub == RPS_BEGIN:
        return _rps_begin(key)
    if sub == CREDS_BEGIN:
        return _creds_begin(key, sub_params or {})
    if sub == DELETE:
        key.credentials.remove(_target(key, sub_params or {}))
        return None
    _update(key, sub_params or {})
    return None


def _rps_begin(key: SoftAuthenticator) -> dict[int, Any]:
    rps: dict[str, Credential] = {}
    for credential in key.discoverable:
        rps.setdefault(credential.rp_id, credential)
    if not rps:
        raise CtapError(ERR.NO_CREDENTIALS)
    items = [_rp_entry(c) for c in rps.values()]
    key.enumeration = Enumeration(commands=(0x0A,), items=items[1:], extra={"kind": RPS_NEXT})
    return {**items[0], 5: len(items)}


def _rp_entry(credential: Credential) -> dict[int, Any]:
    rp: dict[str, Any] = {"id": credential.rp_id}
    if credential.rp_name:
        rp["name"] = credential.rp_name
    return {3: rp, 4: sha256(credential.rp_id.encode()).digest()}


def _creds_begin(key: SoftAuthenticator, sub_params: Mapping[int, Any]) -> dict[int, Any]:
    rp_hash = sub_params.get(1)
    if rp_hash is None:
        raise CtapError(ERR.MISSING_PARAMETER)
    creds = [c for c in key.discoverable if sha256(c.rp_id.encode()).digest() == bytes(rp_hash)]
    if not creds:
        raise CtapError(ERR.NO_CREDENTIALS)
    items = [_cred_entry(c) for c in creds]
    key.enumeration = Enumeration(commands=(0x0A,), items=items[1:], extra={"kind": CREDS_NEXT})
    return {**items[0], 9: len(items)}


def _cred_entry(credential: Credential) -> dict[int, Any]:
    return {
        6: dict(credential.user),
        7: {"id": credential.credential_id, "type": "public-key"},
        8: cose_p256(credential.private_key.public_key(), -7),
        10: credential.cred_protect,
    }


def _next(key: SoftAuthenticator, sub: int) -> dict[int, Any]:
    state = key.enumeration
    if state is None or state.extra.get("kind") != sub or not state.items:
        raise CtapError(ERR.NOT_ALLOWED)
    entry: dict[int, Any] = state.items.pop(0)
    return entry


def _target(key: SoftAuthenticator, sub_params: Mapping[int, Any]) -> Credential:
    descriptor = sub_params.get(2)
    if not isinstance(descriptor, Mapping) or "id" not in descriptor:
        raise CtapError(ERR.MISSING_PARAMETER)
    found = key.find(bytes(descriptor["id"]))
    if found is None or not found.discoverable:
        raise CtapError(ERR.NO_CREDENTIALS)
    return found


def _update(key: SoftAuthenticator, sub_params: Mapping[int, Any]) -> None:
    credential = _target(key, sub_params)
    user = sub_params.get(3)
    if not isinstance(user, Mapping) or bytes(user.get("id", b"")) != credential.user_id:
        raise CtapError(ERR.INVALID_PARAMETER)
    credential.user = {"id": credential.user_id, **{k: v for k, v in user.items() if k != "id"}}
