"""authenticatorMakeCredential (0x01): ES256 credentials, packed attestation, credProtect / hmac-secret /
minPinLength extensions, exclude lists, resident keys with a capacity (the "key full" quirk)."""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.ctap import CtapError

from agent.softkey.attestation import attestation_key
from agent.softkey.pinuv import cose_p256, protocol
from agent.softkey.state import Credential, Perm

if TYPE_CHECKING:
    from agent.softkey.authenticator import Presence, SoftAuthenticator

ERR = CtapError.ERR
FLAG_UP, FLAG_UV, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x40, 0x80
CDH, RP, USER, PARAMS, EXCLUDE, EXTENSIONS, OPTIONS, PIN_UV_PARAM, PIN_UV_PROTOCOL = range(1, 10)


def handle(key: SoftAuthenticator, params: dict[int, Any], presence: Presence) -> dict[int, Any]:
    if params.get(PIN_UV_PARAM) == b"":
        key.require_touch(presence)  # python-fido2's "selection" probe for CTAP 2.0 keys
        raise CtapError(ERR.PIN_INVALID if key.pin.is_set else ERR.PIN_NOT_SET)
    if any(params.get(k) is None for k in (CDH, RP, USER, PARAMS)):
        raise CtapError(ERR.MISSING_PARAMETER)
    _check_algorithms(params[PARAMS])
    rp, user, options = params[RP], params[USER], params.get(OPTIONS) or {}
    if options.get("up") is False or options.get("uv") is True:
        raise CtapError(ERR.INVALID_OPTION)
    resident = bool(options.get("rk"))
    uv = _user_verified(key, params, rp["id"], resident)
    _refuse_excluded(key, params.get(EXCLUDE) or [], rp["id"], uv, presence)
    if resident and _needs_new_slot(key, rp["id"], user) and len(key.discoverable) >= key.profile.capacity:
        raise CtapError(ERR.KEY_STORE_FULL)
    extensions_in = params.get(EXTENSIONS) or {}
    key.require_touch(presence)
    credential = _new_credential(key, rp, user, resident, extensions_in)
    auth_data = _auth_data(key, credential, uv, _extension_outputs(key, credential, extensions_in, rp["id"]))
    signer = attestation_key(key.profile.aaguid)
    statement = {"alg": -7, "sig": signer.sign(auth_data + params[CDH]), "x5c": [signer.certificate_der]}
    return {1: "packed", 2: auth_data, 3: statement}


def _check_algorithms(params: list[Mapping[str, Any]]) -> None:
    if not any(p.get("type") == "public-key" and p.get("alg") == -7 for p in params):
        raise CtapError(ERR.UNSUPPORTED_ALGORITHM)


def _user_verified(key: SoftAuthenticator, params: dict[int, Any], rp_id: str, resident: bool) -> bool:
    pin_uv_param = params.get(PIN_UV_PARAM)
    if pin_uv_param is None:
        needs_uv = key.always_uv or (key.pin.is_set and (resident or not key.profile.ctap21))
        if needs_uv:
            raise CtapError(ERR.PUAT_REQUIRED)  # CTAP 2.0 calls the same 0x36 PIN_REQUIRED
        return False
    protocol(params.get(PIN_UV_PROTOCOL), key.pin_protocols)
    key.verify_token(params.get(PIN_UV_PROTOCOL), pin_uv_param, params[CDH], Perm.MC, rp_id)
    return True


def _refuse_excluded(
    key: SoftAuthenticator, exclude: list[Mapping[str, Any]], rp_id: str, uv: bool, presence: Presence
) -> None:
    for descriptor in exclude:
        found = key.find(bytes(descriptor.get("id", b"")), rp_id)
        if found and (found.cred_protect < 3 or uv):
            key.require_touch(presence)
            raise CtapError(ERR.CREDENTIAL_EXCLUDED)


def _needs_new_slot(key: SoftAuthenticator, rp_id: str, user: Mapping[str, Any]) -> bool:
    return not any(c.rp_id == rp_id and c.user_id == bytes(user["id"]) for c in key.discoverable)


def _new_credential(
    key: SoftAuthenticator,
    rp: Mapping[str, Any],
    user: Mapping[str, Any],
    resident: bool,
    ext: Mapping[str, Any],
) -> Credential:
    level = ext.get("credProtect", 1)
    if level not in (1, 2, 3):
        raise CtapError(ERR.INVALID_OPTION)
    if resident:  # same RP and user: the new credential replaces the old one
        key.credentials[:] = [
            c
            for c in key.credentials
            if not (c.discoverable and c.rp_id == rp["id"] and c.user_id == bytes(user["id"]))
        ]
    credential = Credential(
        credential_id=key.new_credential_id(),
        rp_id=str(rp["id"]),
        rp_name=rp.get("name"),
        user=dict(user),
        private_key=ec.generate_private_key(ec.SECP256R1()),
        discoverable=resident,
        cred_protect=level if "credProtect" in key.profile.extensions else 1,
        cred_random=os.urandom(32)
        if ext.get("hmac-secret") is True and "hmac-secret" in key.profile.extensions
        else None,
    )
    key.credentials.append(credential)
    return credential


def _extension_outputs(
    key: SoftAuthenticator, credential: Credential, ext: Mapping[str, Any], rp_id: str
) -> dict[str, Any]:
    supported = key.profile.extensions
    out: dict[str, Any] = {}
    if "credProtect" in ext and "credProtect" in supported:
        out["credProtect"] = credential.cred_protect
    if ext.get("hmac-secret") is True and "hmac-secret" in supported:
        out["hmac-secret"] = True
    if ext.get("minPinLength") is True and rp_id in key.pin.min_length_rp_ids:
        out["minPinLength"] = key.pin.min_length
    return out


def _auth_data(key: SoftAuthenticator, credential: Credential, uv: bool, extensions: dict[str, Any]) -> bytes:
    flags = FLAG_UP | FLAG_AT | (FLAG_UV if uv else 0) | (FLAG_ED if extensions else 0)
    public_key = cbor.encode(cose_p256(credential.private_key.public_key(), -7))
    attested = (
        key.profile.aaguid
        + struct.pack(">H", len(credential.credential_id))
        + credential.credential_id
        + public_key
    )
    data = sha256(credential.rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", 0) + attested
    return data + (cbor.encode(extensions) if extensions else b"")
