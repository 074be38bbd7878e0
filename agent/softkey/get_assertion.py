"""authenticatorGetAssertion (0x02) and GetNextAssertion (0x08), including the silent (up=false)
probe python-fido2 uses to check an exclude list, and credProtect visibility rules."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.ctap import CtapError

from agent.softkey.pinuv import protocol
from agent.softkey.state import Credential, Enumeration, Perm

if TYPE_CHECKING:
    from agent.softkey.authenticator import Presence, SoftAuthenticator

ERR = CtapError.ERR
RP_ID, CDH, ALLOW, EXTENSIONS, OPTIONS, PIN_UV_PARAM, PIN_UV_PROTOCOL = range(1, 8)
FLAG_UP, FLAG_UV = 0x01, 0x04


def handle(key: SoftAuthenticator, params: dict[int, Any], presence: Presence) -> dict[int, Any]:
    if params.get(PIN_UV_PARAM) == b"":
        key.require_touch(presence)
        raise CtapError(ERR.PIN_INVALID if key.pin.is_set else ERR.PIN_NOT_SET)
    if params.get(RP_ID) is None or params.get(CDH) is None:
        raise CtapError(ERR.MISSING_PARAMETER)
    rp_id, options = str(params[RP_ID]), params.get(OPTIONS) or {}
    if options.get("uv") is True:
        raise CtapError(ERR.INVALID_OPTION)
    uv = _user_verified(key, params, rp_id)
    allow = params.get(ALLOW) or []
    candidates = _candidates(key, rp_id, allow)
    visible = [c for c in candidates if _visible(c, uv, bool(allow))]
    if not visible:
        raise CtapError(ERR.NO_CREDENTIALS)
    up = options.get("up", True) is not False
    if up:
        key.require_touch(presence)
    if len(visible) > 1 and not allow:
        key.enumeration = Enumeration(
            commands=(0x08,), items=visible[1:], extra={"cdh": params[CDH], "uv": uv, "up": up}
        )
    count = len(visible) if len(visible) > 1 and not allow else None
    return _assertion(key, visible[0], params[CDH], uv, up, count)


def handle_next(key: SoftAuthenticator, params: dict[int, Any], presence: Presence) -> dict[int, Any]:
    state = key.enumeration
    if state is None or state.commands != (0x08,) or not state.items:
        raise CtapError(ERR.NOT_ALLOWED)
    credential = state.items.pop(0)
    return _assertion(key, credential, state.extra["cdh"], state.extra["uv"], state.extra["up"], None)


def _user_verified(key: SoftAuthenticator, params: dict[int, Any], rp_id: str) -> bool:
    if params.get(PIN_UV_PARAM) is None:
        if key.always_uv:
            raise CtapError(ERR.PUAT_REQUIRED)
        return False
    protocol(params.get(PIN_UV_PROTOCOL), key.pin_protocols)
    key.verify_token(params.get(PIN_UV_PROTOCOL), params[PIN_UV_PARAM], params[CDH], Perm.GA, rp_id)
    return True


def _candidates(key: SoftAuthenticator, rp_id: str, allow: list[Mapping[str, Any]]) -> list[Credential]:
    if allow:
        found = (key.find(bytes(d.get("id", b"")), rp_id) for d in allow)
        return [c for c in found if c is not None]
    return [c for c in reversed(key.discoverable) if c.rp_id == rp_id]


def _visible(credential: Credential, uv: bool, listed: bool) -> bool:
    if credential.cred_protect == 3:
        return uv
    if credential.cred_protect == 2:
        return uv or listed
    return True


def _assertion(
    key: SoftAuthenticator, credential: Credential, cdh: bytes, uv: bool, up: bool, count: int | None
) -> dict[int, Any]:
    credential.sign_count += 1
    flags = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0)
    auth_data = (
        sha256(credential.rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", credential.sign_count)
    )
    signature = credential.private_key.sign(auth_data + cdh, ec.ECDSA(hashes.SHA256()))
    response: dict[int, Any] = {
        1: {"id": credential.credential_id, "type": "public-key"},
        2: auth_data,
        3: signature,
    }
    if credential.discoverable:
        user = {"id": credential.user_id}
        if uv:
            user.update({k: v for k, v in credential.user.items() if k in ("name", "displayName")})
        response[4] = user
    if count:
        response[5] = count
    return response
