"""authenticatorConfig (0x0D): setMinPINLength (with forceChangePin and RP ids) and toggleAlwaysUv."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fido2 import cbor
from fido2.ctap import CtapError

from agent.softkey.state import Perm

if TYPE_CHECKING:
    from agent.softkey.authenticator import Presence, SoftAuthenticator

ERR = CtapError.ERR
SUBCOMMAND, SUBCOMMAND_PARAMS, PIN_UV_PROTOCOL, PIN_UV_PARAM = 1, 2, 3, 4
TOGGLE_ALWAYS_UV, SET_MIN_PIN_LENGTH = 0x02, 0x03


def handle(key: SoftAuthenticator, params: dict[int, Any], presence: Presence) -> None:
    sub = params.get(SUBCOMMAND)
    if sub not in (TOGGLE_ALWAYS_UV, SET_MIN_PIN_LENGTH):
        raise CtapError(ERR.INVALID_SUBCOMMAND)
    sub_params = params.get(SUBCOMMAND_PARAMS)
    _authorise(key, params, sub, sub_params)
    if sub == TOGGLE_ALWAYS_UV:
        key.always_uv = not key.always_uv
        return
    _set_min_pin_length(key, sub_params or {})


def _authorise(key: SoftAuthenticator, params: dict[int, Any], sub: int, sub_params: Any) -> None:
    """A key without a PIN (and without alwaysUv) takes config unauthenticated; otherwise a token."""
    if not key.pin.is_set and not key.always_uv:
        return
    if params.get(PIN_UV_PARAM) is None:
        raise CtapError(ERR.PUAT_REQUIRED)
    message = (
        b"\xff" * 32 + b"\x0d" + bytes([sub]) + (cbor.encode(sub_params) if sub_params is not None else b"")
    )
    key.verify_token(params.get(PIN_UV_PROTOCOL), params[PIN_UV_PARAM], message, Perm.ACFG)


def _set_min_pin_length(key: SoftAuthenticator, sub_params: Mapping[int, Any]) -> None:
    new_min = sub_params.get(1)
    rp_ids = sub_params.get(2)
    force = bool(sub_params.get(3))
    if new_min is not None and new_min < key.pin.min_length:
        raise CtapError(ERR.PIN_POLICY_VIOLATION)  # the minimum only ever goes up
    if rp_ids is not None and len(rp_ids) > key.profile.max_rpids_for_min_pin:
        raise CtapError(ERR.PIN_POLICY_VIOLATION)
    if force and not key.pin.is_set:
        raise CtapError(ERR.PIN_NOT_SET)
    if new_min is not None:
        key.pin.min_length = int(new_min)
        if key.pin.is_set and key.pin.code_points < key.pin.min_length:
            key.pin.force_change = True  # the current PIN is now too short
    if rp_ids is not None:
        key.pin.min_length_rp_ids = [str(r) for r in rp_ids]
    if force:
        key.pin.force_change = True
