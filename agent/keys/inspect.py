"""Inspect a key: model, firmware, PIN state, passkeys, Entra readiness and the tenant's model policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from fido2.ctap2 import ClientPin, Config, CredentialManagement, Info

from agent.keys.credentials import count_credentials
from agent.keys.devices import OpenKey
from agent.keys.errors import KeyOperationError, Operation, Problem
from agent.keys.metadata import KeyModel, ModelCatalog, normalise_aaguid
from agent.keys.pin import PinStatus, read_pin_status
from agent.keys.secret import Pin
from agent.keys.session import open_ctap2, translated


class PolicyVerdict(StrEnum):
    ALLOWED = "allowed"
    NOT_ALLOWED = "not_allowed"
    NO_POLICY = "no_policy"


@dataclass(frozen=True)
class KeyPolicy:
    """The tenant's allowed key models (Entra's FIDO2 key restrictions), as AAGUIDs."""

    allowed_aaguids: frozenset[str]

    @classmethod
    def allowing(cls, aaguids: Iterable[str]) -> KeyPolicy:
        return cls(frozenset(normalise_aaguid(a) for a in aaguids))

    def verdict(self, aaguid: str) -> PolicyVerdict:
        return (
            PolicyVerdict.ALLOWED
            if normalise_aaguid(aaguid) in self.allowed_aaguids
            else PolicyVerdict.NOT_ALLOWED
        )


@dataclass(frozen=True)
class KeyReport:
    path: str
    product_name: str | None
    serial_number: str | None
    aaguid: str
    model: KeyModel | None
    versions: tuple[str, ...]
    firmware: str | None
    pin: PinStatus
    discoverable_credentials: int | None
    remaining_discoverable: int | None
    credentials_note: str | None
    extensions: tuple[str, ...]
    policy: PolicyVerdict
    entra_gaps: tuple[str, ...]
    desk_limits: tuple[str, ...]

    @property
    def model_name(self) -> str:
        return self.model.name if self.model else "unknown model"

    @property
    def entra_ready(self) -> bool:
        return not self.entra_gaps


def inspect_key(
    key: OpenKey,
    *,
    catalog: ModelCatalog | None = None,
    policy: KeyPolicy | None = None,
    pin: Pin | None = None,
) -> KeyReport:
    """Everything a technician needs to know about the key; with `pin`, also the passkey count."""
    ctap2 = open_ctap2(key.device)
    with translated(Operation.INFO, ctap2):
        info = ctap2.get_info()
        pin_state = read_pin_status(ctap2, info)
    aaguid = normalise_aaguid(bytes(info.aaguid))
    existing, note = _count(key, info, pin_state, pin)
    return KeyReport(
        path=key.descriptor.path,
        product_name=key.descriptor.product_name,
        serial_number=key.descriptor.serial_number,
        aaguid=aaguid,
        model=(catalog or ModelCatalog.bundled()).lookup(aaguid),
        versions=tuple(info.versions),
        firmware=_firmware(info, getattr(key.device, "device_version", None)),
        pin=pin_state,
        discoverable_credentials=existing,
        remaining_discoverable=info.remaining_disc_creds,
        credentials_note=note,
        extensions=tuple(info.extensions),
        policy=policy.verdict(aaguid) if policy else PolicyVerdict.NO_POLICY,
        entra_gaps=_entra_gaps(info),
        desk_limits=_desk_limits(info),
    )


def _count(key: OpenKey, info: Info, state: PinStatus, pin: Pin | None) -> tuple[int | None, str | None]:
    if not CredentialManagement.is_supported(info):
        return None, "this key cannot count its passkeys"
    if not state.is_set:
        return None, "a key without a PIN cannot be asked"
    if pin is None:
        return None, "the PIN is needed to count them"
    try:
        return count_credentials(key.device, pin).existing, None
    except KeyOperationError as exc:
        if exc.problem is Problem.FORCED_PIN_CHANGE_PENDING:
            return None, "cannot count while a PIN change is pending"
        raise


def _firmware(info: Info, device_version: tuple[int, int, int] | None) -> str | None:
    value = info.firmware_version
    if 0 < value <= 0xFFFFFF:
        return f"{value >> 16}.{(value >> 8) & 0xFF}.{value & 0xFF}"
    if value:
        return str(value)
    if device_version and any(device_version):
        return ".".join(str(part) for part in device_version)
    return None


def _entra_gaps(info: Info) -> tuple[str, ...]:
    gaps = []
    if not info.options.get("rk"):
        gaps.append("it cannot store passkeys (no resident keys)")
    if not ClientPin.is_supported(info):
        gaps.append("it has no PIN support")
    if "hmac-secret" not in info.extensions:
        gaps.append("it lacks hmac-secret (Windows sign-in with the key needs it)")
    return tuple(gaps)


def _desk_limits(info: Info) -> tuple[str, ...]:
    limits = []
    if not CredentialManagement.is_supported(info):
        limits.append("cannot list or delete passkeys")
    if not (Config.is_supported(info) and info.options.get("setMinPINLength")):
        limits.append("cannot set a minimum PIN length or force a PIN change")
    return tuple(limits)
