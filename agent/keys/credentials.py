"""Discoverable credentials (passkeys) on a key: count, list, delete, via CTAP 2.1 credential management."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fido2.ctap import CtapDevice
from fido2.ctap2 import ClientPin, CredentialManagement, Ctap2
from fido2.webauthn import PublicKeyCredentialDescriptor, PublicKeyCredentialType

from agent.keys.errors import KeyOperationError, Operation, Problem
from agent.keys.secret import Pin
from agent.keys.session import open_ctap2, pin_token, translated

R = CredentialManagement.RESULT


@dataclass(frozen=True)
class StoredCredential:
    rp_id: str
    credential_id: bytes
    user_id: bytes
    user_name: str | None
    display_name: str | None
    cred_protect: int | None

    @property
    def short_id(self) -> str:
        """A short hex prefix for people (like ykman): enough to tell passkeys apart on one key."""
        return self.credential_id.hex()[:12]


@dataclass(frozen=True)
class CredentialCount:
    existing: int
    remaining: int | None


def count_credentials(device: CtapDevice, pin: Pin) -> CredentialCount:
    ctap2, cm = _open(device, pin)
    with translated(Operation.CREDENTIALS, ctap2):
        meta = cm.get_metadata()
    return CredentialCount(int(meta.get(R.EXISTING_CRED_COUNT, 0)), meta.get(R.MAX_REMAINING_COUNT))


def list_credentials(device: CtapDevice, pin: Pin) -> list[StoredCredential]:
    ctap2, cm = _open(device, pin)
    with translated(Operation.CREDENTIALS, ctap2):
        if cm.get_metadata().get(R.EXISTING_CRED_COUNT) == 0:
            return []
        return [
            _stored(rp[R.RP], cred)
            for rp in cm.enumerate_rps()
            for cred in cm.enumerate_creds(rp[R.RP_ID_HASH])
        ]


def delete_credential(device: CtapDevice, pin: Pin, credential_id: bytes) -> None:
    """Delete one passkey; CREDENTIAL_NOT_FOUND when the key holds no passkey with that id."""
    ctap2, cm = _open(device, pin)
    with translated(Operation.CREDENTIALS, ctap2):
        cm.delete_cred(
            PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY, id=credential_id)
        )


def _open(device: CtapDevice, pin: Pin) -> tuple[Ctap2, CredentialManagement]:
    ctap2 = open_ctap2(device)
    if not CredentialManagement.is_supported(ctap2.get_info()):
        raise KeyOperationError(
            Problem.NOT_SUPPORTED, "It cannot list or delete passkeys (no credential management)."
        )
    client_pin, token = pin_token(ctap2, pin, ClientPin.PERMISSION.CREDENTIAL_MGMT)
    return ctap2, CredentialManagement(ctap2, client_pin.protocol, token)


def _stored(rp: Mapping[str, Any], cred: Mapping[int, Any]) -> StoredCredential:
    user = cred[R.USER]
    return StoredCredential(
        rp_id=str(rp["id"]),
        credential_id=bytes(cred[R.CREDENTIAL_ID]["id"]),
        user_id=bytes(user["id"]),
        user_name=user.get("name"),
        display_name=user.get("displayName"),
        cred_protect=cred.get(R.CRED_PROTECT),
    )
