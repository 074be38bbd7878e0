"""What the soft key is (profile) and how it behaves (switches for the quirks that matter at a desk)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from fido2.ctap import CtapError

# Our own AAGUID: no real key model uses it, so no policy can mistake the soft key for hardware.
SOFT_AAGUID = uuid.UUID("6b657964-6573-4b00-8000-736f66746b79").bytes


class Touch(StrEnum):
    GIVEN = "given"
    NOT_GIVEN = "not_given"  # nobody touches: the key times out (USER_ACTION_TIMEOUT)
    DENIED = "denied"  # the key declines (OPERATION_DENIED), as a long-press "no" on some keys


@dataclass(frozen=True)
class Switches:
    """Behaviour that tests flip at run time: `key.switches = replace(key.switches, touch=...)`."""

    touch: Touch = Touch.GIVEN
    reset_window_s: float = 10.0  # CTAP: reset only within 10 s of power-up (YubiKey: 5 s)
    reset_late_error: int = CtapError.ERR.NOT_ALLOWED  # YubiKeys answer PIN_AUTH_BLOCKED instead


@dataclass(frozen=True)
class SoftKeyProfile:
    """The model: identity, capacity, protocol level."""

    aaguid: bytes = SOFT_AAGUID
    product_name: str = "keydesk soft key"
    serial_number: str | None = "KD-SOFT-0001"
    firmware_version: int = 0x010203
    device_version: tuple[int, int, int] = (1, 2, 3)
    capacity: int = 25  # discoverable credentials it can hold
    ctap2: bool = True  # False: a U2F-only device (no CBOR capability)
    ctap21: bool = True  # False: a CTAP 2.0 key (no credential management, no config, legacy tokens)
    pin_protocols: tuple[int, ...] = (2, 1)
    max_pin_retries: int = 8
    retries_per_boot: int = 3
    extensions: tuple[str, ...] = ("credProtect", "hmac-secret", "minPinLength")
    max_rpids_for_min_pin: int = 2

    @property
    def aaguid_text(self) -> str:
        return str(uuid.UUID(bytes=self.aaguid))
