"""Talking to one key: open the CTAP2 layer, get PIN tokens, and turn library errors into typed ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from fido2.client import ClientError, PinRequiredError
from fido2.ctap import CtapDevice, CtapError
from fido2.ctap2 import ClientPin, Ctap2

from agent.keys.errors import KeyOperationError, Operation, Problem, from_ctap
from agent.keys.secret import Pin


def open_ctap2(device: CtapDevice) -> Ctap2:
    """The key's CTAP2 interface; refuses U2F-only devices (they cannot hold passkeys or a PIN)."""
    with translated(Operation.INFO):
        try:
            return Ctap2(device)
        except ValueError as exc:
            raise KeyOperationError(Problem.NOT_FIDO2) from exc


def pin_token(
    ctap2: Ctap2, pin: Pin, permissions: ClientPin.PERMISSION, rp_id: str | None = None
) -> tuple[ClientPin, bytes]:
    """A PIN/UV auth token with the given permissions (fresh GetInfo first: the cached one goes stale)."""
    info = ctap2.get_info()
    if not ClientPin.is_supported(info):
        raise KeyOperationError(Problem.NOT_SUPPORTED, "It has no PIN support.")
    if not info.options.get("clientPin"):
        raise KeyOperationError(Problem.PIN_NOT_SET)
    client_pin = ClientPin(ctap2)
    with translated(Operation.PIN_TOKEN, ctap2):
        return client_pin, client_pin.get_pin_token(pin.reveal(), permissions, rp_id)


@contextmanager
def translated(op: Operation, ctap2: Ctap2 | None = None) -> Iterator[None]:
    """Re-raise anything the key or python-fido2 throws as a KeyOperationError with a plain sentence."""
    try:
        yield
    except KeyOperationError:
        raise
    except CtapError as exc:
        raise _from_ctap_error(exc, op, ctap2) from exc
    except ClientError as exc:
        raise _from_client_error(exc, op, ctap2) from exc
    except OSError as exc:
        raise _from_os_error(exc) from exc


def _from_ctap_error(exc: CtapError, op: Operation, ctap2: Ctap2 | None) -> KeyOperationError:
    code = int(exc.code)
    force_pending = False
    retries: int | None = None
    if ctap2 is not None and code == CtapError.ERR.PIN_POLICY_VIOLATION:
        force_pending = _force_change_pending(ctap2)
    if ctap2 is not None and code in (CtapError.ERR.PIN_INVALID, CtapError.ERR.PIN_AUTH_BLOCKED):
        retries = _pin_retries(ctap2)
    return from_ctap(code, op, force_change_pending=force_pending, retries_left=retries)


def _from_client_error(exc: ClientError, op: Operation, ctap2: Ctap2 | None) -> KeyOperationError:
    if isinstance(exc.cause, CtapError):
        return _from_ctap_error(exc.cause, op, ctap2)
    if isinstance(exc, PinRequiredError):
        return KeyOperationError(Problem.PIN_REQUIRED)
    cause = str(exc.cause or "")
    if exc.code == ClientError.ERR.CONFIGURATION_UNSUPPORTED and "verification" in cause:
        return KeyOperationError(Problem.PIN_NOT_SET)
    if exc.code == ClientError.ERR.CONFIGURATION_UNSUPPORTED:
        return KeyOperationError(Problem.NOT_SUPPORTED, cause or None)
    if exc.code == ClientError.ERR.DEVICE_INELIGIBLE:
        return KeyOperationError(Problem.ALREADY_REGISTERED)
    if exc.code == ClientError.ERR.TIMEOUT:
        return KeyOperationError(Problem.CANCELLED)
    if exc.code == ClientError.ERR.BAD_REQUEST:
        return KeyOperationError(Problem.BAD_OPTIONS, cause or None)
    return KeyOperationError(Problem.UNEXPECTED, f"Client error {exc.code.name}.")


def _from_os_error(exc: OSError) -> KeyOperationError:
    if isinstance(exc, PermissionError):
        return KeyOperationError(Problem.ACCESS_DENIED)
    return KeyOperationError(Problem.KEY_REMOVED)


def _force_change_pending(ctap2: Ctap2) -> bool:
    with suppress(CtapError, OSError):
        return bool(ctap2.get_info().force_pin_change)
    return False


def _pin_retries(ctap2: Ctap2) -> int | None:
    with suppress(CtapError, OSError, ValueError):
        return ClientPin(ctap2).get_pin_retries()[0]
    return None
