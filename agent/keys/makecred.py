"""Create an Entra passkey on a key from Graph's creation options, and shape the result for Graph.

The only operation that goes through python-fido2's WebAuthn client. Traps handled here:
hmac-secret is dropped by python-fido2 unless allowed explicitly; the origin must be
"https://" + rp.id; excludeCredentials ids arrive in several encodings; Graph may wrap the
options in {"value": ...}; the PIN is collected before the call so typing it never eats the timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from threading import Event
from typing import Any

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapDevice
from fido2.ctap2 import ClientPin
from fido2.ctap2.extensions import (
    CredPropsExtension,
    CredProtectExtension,
    HmacSecretExtension,
    MinPinLengthExtension,
)
from fido2.webauthn import (
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialType,
    RegistrationResponse,
)

from agent.keys.credential_ids import graph_id_candidates
from agent.keys.credentials import delete_credential
from agent.keys.errors import KeyOperationError, Operation, Problem
from agent.keys.metadata import normalise_aaguid
from agent.keys.secret import Pin
from agent.keys.session import open_ctap2, translated

HMAC_SECRET = "hmac-secret"  # noqa: S105 (an extension name)
CRED_PROTECT = "credProtect"


@dataclass(frozen=True)
class Registration:
    """A passkey just created on a key, ready for POST /users/{id}/authentication/fido2Methods."""

    credential_id: bytes
    aaguid: str
    attestation_format: str
    authenticator_extensions: Mapping[str, Any]
    client_extension_results: Mapping[str, Any]
    webauthn_json: Mapping[str, Any]

    def public_key_credential(self) -> dict[str, Any]:
        """Graph's `publicKeyCredential`: id, clientDataJSON, attestationObject, client extension results."""
        response = self.webauthn_json["response"]
        return {
            "id": self.webauthn_json["id"],
            "response": {
                "clientDataJSON": response["clientDataJSON"],
                "attestationObject": response["attestationObject"],
            },
            "clientExtensionResults": dict(self.client_extension_results),
        }

    def graph_body(self, display_name: str) -> dict[str, Any]:
        return {"displayName": display_name, "publicKeyCredential": self.public_key_credential()}


class DeskInteraction(UserInteraction):
    """Answers python-fido2's questions at the desk: the PIN was asked for before, touch is announced."""

    def __init__(self, pin: Pin, on_touch: Callable[[], None]) -> None:
        self._pin = pin
        self._on_touch = on_touch

    def prompt_up(self) -> None:
        self._on_touch()

    def request_pin(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> str | None:
        return self._pin.reveal()

    def request_uv(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> bool:
        return False  # always the PIN we set, even on keys with a fingerprint reader


def parse_creation_options(graph_options: Mapping[str, Any]) -> PublicKeyCredentialCreationOptions:
    """Graph's fido2 creationOptions (wrapped in "value" or not) -> python-fido2 options."""
    try:
        outer = graph_options.get("value", graph_options)
        public_key = dict(outer.get("publicKey", outer))
        excluded = public_key.pop("excludeCredentials", None) or []
        options = PublicKeyCredentialCreationOptions.from_dict(public_key)
        descriptors = [
            PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY, id=candidate)
            for entry in excluded
            for candidate in graph_id_candidates(str(entry["id"]))
        ]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise KeyOperationError(Problem.BAD_OPTIONS) from exc
    if not options.rp.id:
        raise KeyOperationError(Problem.BAD_OPTIONS, "It names no relying party id.")
    return replace(options, exclude_credentials=descriptors or None)


def create_passkey(
    device: CtapDevice,
    graph_options: Mapping[str, Any],
    pin: Pin,
    *,
    on_touch: Callable[[], None] = lambda: None,
    event: Event | None = None,
    timeout_ms: int | None = None,
) -> Registration:
    """Create the passkey Entra asked for. The key must already have `pin` as its PIN."""
    options = parse_creation_options(graph_options)
    if timeout_ms is not None:
        options = replace(options, timeout=timeout_ms)
    ctap2 = open_ctap2(device)
    _refuse_missing_hmac_secret(options, ctap2.get_info().extensions)
    client = Fido2Client(
        device,
        client_data_collector=DefaultClientDataCollector(f"https://{options.rp.id}"),
        user_interaction=DeskInteraction(pin, on_touch),
        extensions=[
            HmacSecretExtension(allow_hmac_secret=True),
            CredProtectExtension(),
            MinPinLengthExtension(),
            CredPropsExtension(),
        ],
    )
    with translated(Operation.MAKE_CREDENTIAL, ctap2):
        response = client.make_credential(options, event=event)
    registration = _registration(response)
    problem = _missing_extension(options, registration.authenticator_extensions)
    if problem:
        _discard(device, pin, registration.credential_id)
        raise KeyOperationError(Problem.EXTENSION_DROPPED, problem)
    return registration


def _refuse_missing_hmac_secret(options: PublicKeyCredentialCreationOptions, extensions: list[str]) -> None:
    if _wants_hmac_secret(options) and HMAC_SECRET not in extensions:
        raise KeyOperationError(
            Problem.NOT_SUPPORTED,
            "It lacks the hmac-secret extension Microsoft Entra asks for (Windows sign-in needs it).",
        )


def _wants_hmac_secret(options: PublicKeyCredentialCreationOptions) -> bool:
    return bool((options.extensions or {}).get("hmacCreateSecret"))


def _missing_extension(
    options: PublicKeyCredentialCreationOptions, produced: Mapping[str, Any]
) -> str | None:
    if _wants_hmac_secret(options) and produced.get(HMAC_SECRET) is not True:
        return "The hmac-secret extension is missing from the new passkey."
    policy = (options.extensions or {}).get("credentialProtectionPolicy")
    if policy:
        wanted = CredProtectExtension.POLICY.str2int(policy)
        got = produced.get(CRED_PROTECT, 1)  # absent means the default level, 1
        if got != wanted:
            return f"Credential protection is level {got}, Entra asked for level {wanted}."
    return None


def _registration(response: RegistrationResponse) -> Registration:
    attestation = response.response.attestation_object
    credential = attestation.auth_data.credential_data
    if credential is None:
        raise KeyOperationError(Problem.UNEXPECTED, "The key returned no credential.")
    as_json = json.loads(json.dumps(dict(response)))
    return Registration(
        credential_id=bytes(credential.credential_id),
        aaguid=normalise_aaguid(bytes(credential.aaguid)),
        attestation_format=attestation.fmt,
        authenticator_extensions=dict(attestation.auth_data.extensions or {}),
        client_extension_results=dict(as_json.get("clientExtensionResults") or {}),
        webauthn_json=as_json,
    )


def _discard(device: CtapDevice, pin: Pin, credential_id: bytes) -> None:
    """Best effort: do not leave a passkey on the key that Entra will never know about."""
    with suppress(KeyOperationError):
        delete_credential(device, pin, credential_id)
