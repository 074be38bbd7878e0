"""Provision a security key for a user: the agent's half of desk provisioning.

The order that works (see the FIDO2 reference, 1.8): check the key can do what is asked -> set the PIN
(or prove the one it has) -> create the passkey Entra asked for (hmac-secret and credProtect as in the
options) -> hand the attestation to the server, which registers it through Graph -> only then
`finish_provisioning`: force a PIN change at first use and raise the minimum PIN length. Forcing the
change earlier would make the key refuse every PIN token, so the passkey could not be created.

The PIN never leaves this module except into the key (and, for a random PIN, back to the caller inside
`Pin`, whose repr is masked); errors are `KeyOperationError`s with a plain sentence.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from threading import Event
from typing import Any

from fido2.ctap import CtapDevice
from fido2.ctap2 import ClientPin, Config

from agent.keys.errors import KeyOperationError, Operation, Problem
from agent.keys.makecred import Registration, create_passkey, parse_creation_options
from agent.keys.pin import PinStatus, pin_status, set_pin, set_pin_policy
from agent.keys.secret import MAX_PIN_BYTES, Pin
from agent.keys.session import open_ctap2, pin_token, translated

DEFAULT_RANDOM_PIN_LENGTH = 8
MAX_RANDOM_PIN_DRAWS = 100


@dataclass(frozen=True)
class Requirements:
    """What the server asks of the prepared key besides the passkey itself."""

    min_pin_length: int | None = None  # applied by finish_provisioning; checked against the PIN up front
    force_pin_change: bool = True  # the user chooses their own PIN at first use

    def __post_init__(self) -> None:
        if self.min_pin_length is not None and not 4 <= self.min_pin_length <= MAX_PIN_BYTES:
            raise ValueError("a minimum PIN length is 4 to 63")


@dataclass(frozen=True)
class ProvisionedKey:
    """A passkey on the key, not yet registered in Entra. `public_key_credential()` is Graph's body part."""

    registration: Registration
    pin_was_set: bool  # True: the key had no PIN and got this one

    @property
    def aaguid(self) -> str:
        return self.registration.aaguid

    @property
    def credential_id(self) -> bytes:
        return self.registration.credential_id

    def public_key_credential(self) -> dict[str, Any]:
        return self.registration.public_key_credential()


def provision(
    device: CtapDevice,
    creation_options: Mapping[str, Any],
    pin: Pin,
    requirements: Requirements | None = None,
    *,
    on_touch: Callable[[], None] = lambda: None,
    event: Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ProvisionedKey:
    """Set or verify the PIN and create the passkey Entra's `creation_options` describe. Everything that
    can be refused without touching the key (expired challenge, PIN too short, key unable to force a
    PIN change) is refused before anything on the key changes."""
    wanted = requirements or Requirements()
    options = parse_creation_options(creation_options)  # BAD_OPTIONS before anything else
    timeout_ms = _ceremony_ms(options.timeout, _remaining_ms(creation_options, now()))
    status = pin_status(device)
    _check_key(device, status, pin, wanted)
    pin_was_set = not status.is_set
    if pin_was_set:
        set_pin(device, pin)
    else:
        verify_pin(device, pin, options.rp.id or "")
    registration = create_passkey(
        device, creation_options, pin, on_touch=on_touch, event=event, timeout_ms=timeout_ms
    )
    return ProvisionedKey(registration, pin_was_set)


def finish_provisioning(device: CtapDevice, pin: Pin, requirements: Requirements | None = None) -> None:
    """After Graph registered the passkey: raise the minimum PIN length and force a PIN change."""
    wanted = requirements or Requirements()
    current = pin_status(device).min_length
    raise_to = wanted.min_pin_length if (wanted.min_pin_length or 0) > current else None
    if raise_to is None and not wanted.force_pin_change:
        return
    set_pin_policy(device, pin, min_length=raise_to, force_change=wanted.force_pin_change)


def verify_pin(device: CtapDevice, pin: Pin, rp_id: str) -> None:
    """Prove the PIN before asking for a touch: a wrong PIN is reported with the tries left."""
    ctap2 = open_ctap2(device)
    pin_token(ctap2, pin, ClientPin.PERMISSION.MAKE_CREDENTIAL, rp_id or None)


def random_pin(requirements: Requirements | None = None, *, key_min_length: int = 4) -> Pin:
    """A random numeric PIN for a key prepared for pickup: long enough for the policy and the key, and
    never a PIN keys refuse as trivial (one repeated digit, or a run like 123456 / 654321)."""
    wanted = (requirements or Requirements()).min_pin_length or 0
    length = max(DEFAULT_RANDOM_PIN_LENGTH, wanted, key_min_length)
    for _ in range(MAX_RANDOM_PIN_DRAWS):
        digits = "".join(secrets.choice("0123456789") for _ in range(length))
        if not is_trivial(digits):
            return Pin(digits)
    raise RuntimeError("could not draw a non-trivial PIN")  # pragma: no cover - odds are ~1e-7 per draw


def is_trivial(digits: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(digits)}
    return len(steps) <= 1 and (not steps or steps <= {0, 1, 9})


def _check_key(device: CtapDevice, status: PinStatus, pin: Pin, wanted: Requirements) -> None:
    if not status.supported:
        raise KeyOperationError(Problem.NOT_SUPPORTED, "It has no PIN support.")
    if status.force_change_pending:
        raise KeyOperationError(Problem.FORCED_PIN_CHANGE_PENDING)
    floor = max(status.min_length, wanted.min_pin_length or 0)
    if pin.length < floor:
        raise KeyOperationError(Problem.PIN_REJECTED, f"The PIN needs at least {floor} characters.")
    if wanted.force_pin_change or wanted.min_pin_length:
        ctap2 = open_ctap2(device)
        with translated(Operation.INFO, ctap2):
            info = ctap2.get_info()
        if not Config.is_supported(info) or not info.options.get("setMinPINLength"):
            raise KeyOperationError(
                Problem.NOT_SUPPORTED,
                "It cannot force a PIN change or a minimum PIN length (CTAP 2.1 needed), "
                "so it cannot be prepared for someone else.",
            )


def _ceremony_ms(option_ms: int | None, left_ms: int | None) -> int | None:
    """The ceremony's own timeout (60 s in v1.0 answers, 0 = none in beta), never past the challenge."""
    limits = [t for t in (option_ms, left_ms) if t]
    return min(limits) if limits else None


def _remaining_ms(creation_options: Mapping[str, Any], now: datetime) -> int | None:
    """Milliseconds left on Entra's challenge (None when the options do not say). An expired challenge
    is refused here, before the key is touched: Entra would refuse the registration anyway."""
    outer = creation_options.get("value", creation_options)
    raw = outer.get("challengeTimeoutDateTime") if isinstance(outer, Mapping) else None
    if not isinstance(raw, str) or not raw:
        return None
    try:
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    left = (expires - now).total_seconds()
    if left <= 0:
        raise KeyOperationError(Problem.CHALLENGE_EXPIRED)
    return max(1, int(left * 1000))
