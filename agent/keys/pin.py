"""PIN operations: read the PIN state, set or change the PIN, minimum length and forced change
(authenticatorConfig). Order for provisioning: set PIN -> create passkey -> Graph registers it ->
only then force the change, because a pending forced change makes the key refuse every PIN token."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fido2.ctap import CtapDevice
from fido2.ctap2 import ClientPin, Config, Ctap2, Info

from agent.keys.errors import KeyOperationError, Operation, Problem
from agent.keys.secret import Pin
from agent.keys.session import open_ctap2, pin_token, translated


@dataclass(frozen=True)
class PinStatus:
    supported: bool
    is_set: bool
    retries: int | None
    power_cycle_required: bool
    min_length: int
    max_length: int
    force_change_pending: bool


def pin_status(device: CtapDevice) -> PinStatus:
    ctap2 = open_ctap2(device)
    with translated(Operation.INFO, ctap2):
        return read_pin_status(ctap2, ctap2.get_info())


def read_pin_status(ctap2: Ctap2, info: Info) -> PinStatus:
    supported = ClientPin.is_supported(info)
    retries: int | None = None
    power_cycle = False
    if info.options.get("clientPin"):
        retries, state = ClientPin(ctap2).get_pin_retries()
        power_cycle = bool(state)
    return PinStatus(
        supported=supported,
        is_set=bool(info.options.get("clientPin")),
        retries=retries,
        power_cycle_required=power_cycle,
        min_length=info.min_pin_length,
        max_length=info.max_pin_length,
        force_change_pending=bool(info.force_pin_change),
    )


def set_pin(device: CtapDevice, pin: Pin) -> None:
    """Give a fresh key (no PIN yet) its first PIN."""
    ctap2 = open_ctap2(device)
    info = ctap2.get_info()
    if not ClientPin.is_supported(info):
        raise KeyOperationError(Problem.NOT_SUPPORTED, "It has no PIN support.")
    if info.options.get("clientPin"):
        raise KeyOperationError(Problem.PIN_ALREADY_SET)
    _check_length(pin, info)
    with translated(Operation.SET_PIN, ctap2):
        ClientPin(ctap2).set_pin(pin.reveal())


def change_pin(device: CtapDevice, current: Pin, new: Pin) -> None:
    """Change the PIN; this also completes a pending forced PIN change."""
    ctap2 = open_ctap2(device)
    info = ctap2.get_info()
    if not info.options.get("clientPin"):
        raise KeyOperationError(Problem.PIN_NOT_SET)
    _check_length(new, info)
    with translated(Operation.CHANGE_PIN, ctap2):
        ClientPin(ctap2).change_pin(current.reveal(), new.reveal())


def set_pin_policy(
    device: CtapDevice,
    pin: Pin | None,
    *,
    min_length: int | None = None,
    force_change: bool = False,
    rp_ids: Sequence[str] | None = None,
) -> None:
    """Raise the minimum PIN length and/or force a PIN change at next use (CTAP 2.1 keys only).

    Without a PIN on the key no token is needed (a fresh key can get its minimum before its PIN).
    """
    ctap2 = open_ctap2(device)
    info = ctap2.get_info()
    if not Config.is_supported(info) or not info.options.get("setMinPINLength"):
        raise KeyOperationError(
            Problem.NOT_SUPPORTED, "It cannot enforce a minimum PIN length or a PIN change (CTAP 2.1 needed)."
        )
    config = _config(ctap2, info, pin)
    with translated(Operation.CONFIG, ctap2):
        config.set_min_pin_length(
            min_pin_length=min_length,
            rp_ids=list(rp_ids) if rp_ids is not None else None,
            force_change_pin=force_change,
        )


def force_pin_change(device: CtapDevice, pin: Pin, *, min_length: int | None = None) -> None:
    """The last provisioning step: the user must choose their own PIN at first use."""
    set_pin_policy(device, pin, min_length=min_length, force_change=True)


def _config(ctap2: Ctap2, info: Info, pin: Pin | None) -> Config:
    if not info.options.get("clientPin"):
        return Config(ctap2)
    if pin is None:
        raise KeyOperationError(Problem.PIN_REQUIRED)
    client_pin, token = pin_token(ctap2, pin, ClientPin.PERMISSION.AUTHENTICATOR_CFG)
    return Config(ctap2, client_pin.protocol, token)


def _check_length(pin: Pin, info: Info) -> None:
    if pin.length < info.min_pin_length or pin.byte_length > info.max_pin_length:
        raise KeyOperationError(
            Problem.PIN_REJECTED,
            f"This key wants {info.min_pin_length} to {info.max_pin_length} characters.",
        )
