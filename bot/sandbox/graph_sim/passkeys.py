"""Passkeys provisioned on a user's behalf: creation options with single-use, expiring challenges, and
registrations accepted only when they verify and the tenant's FIDO2 policy allows the key model.

Entra publishes the success answers only; the error codes and sentences below are the simulator's
own, worded so that a client can tell the cases apart (model refused, challenge spent, duplicate).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock

from . import webauthn_check
from .credentials import YUBIKEY_5_NFC_AAGUID, YUBIKEY_5_NFC_MODEL
from .errors import GraphError, bad_request, policy_refusal
from .model import Fido2Method, MethodKind, SimUser
from .oath import OathState
from .policy import in_scope
from .timefmt import graph_time

ENTRA_RP = {"id": "login.microsoft.com", "name": "Microsoft"}
V1_CHALLENGE_MINUTES = 5
MIN_CHALLENGE_MINUTES = 5
MAX_CHALLENGE_MINUTES = 43200
USER_HANDLE_BYTES = 48


@dataclass
class ChallengeRecord:
    user_id: str
    value: str  # unpadded base64url, as sent in the options
    expires: datetime
    version: str
    used_at: datetime | None = None


@dataclass
class KeyModel:
    """The simulator's slice of the FIDO metadata service: a model name and its attestation roots."""

    aaguid: str
    name: str
    roots: list[bytes] = field(default_factory=list)  # PEM


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def method_id_for(credential_id: bytes) -> str:
    """Entra's FIDO2 method id: the credential id in base64url with the stripped '=' count appended."""
    encoded = base64.urlsafe_b64encode(credential_id).decode()
    stripped = encoded.rstrip("=")
    return f"{stripped}{len(encoded) - len(stripped)}"


class PasskeyState(OathState):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.challenges: dict[str, ChallengeRecord] = {}
        self.key_models: dict[str, KeyModel] = {
            YUBIKEY_5_NFC_AAGUID: KeyModel(YUBIKEY_5_NFC_AAGUID, YUBIKEY_5_NFC_MODEL)
        }
        self._user_handles: dict[str, bytes] = {}

    # -- seeding -------------------------------------------------------------------------------------

    def trust_key_model(self, aaguid: str, name: str, root_pem: bytes | None = None) -> None:
        """Make a key model known (name, and an attestation root that proves it): MDS for the sim."""
        model = self.key_models.setdefault(aaguid.lower(), KeyModel(aaguid.lower(), name))
        model.name = name
        if root_pem is not None and root_pem not in model.roots:
            model.roots.append(root_pem)

    # -- creationOptions -----------------------------------------------------------------------------

    def creation_options(self, user_id: str, minutes: int, version: str) -> dict[str, Any]:
        user = self.users[user_id]
        self._check_user(user, version)
        if not MIN_CHALLENGE_MINUTES <= minutes <= MAX_CHALLENGE_MINUTES:
            raise bad_request(
                f"challengeTimeoutInMinutes must be between {MIN_CHALLENGE_MINUTES} and "
                f"{MAX_CHALLENGE_MINUTES}."
            )
        now = self.clock.now()
        record = ChallengeRecord(
            user_id, b64url(secrets.token_bytes(32)), now + timedelta(minutes=minutes), version
        )
        self.challenges[record.value] = record
        handle = self._user_handles.setdefault(user_id, secrets.token_bytes(USER_HANDLE_BYTES))
        return {
            "challengeTimeoutDateTime": graph_time(record.expires),
            "publicKey": {
                "challenge": record.value,
                "timeout": 0 if version == "beta" else 60000,
                "attestation": "direct",
                "rp": dict(ENTRA_RP),
                "user": {"id": b64url(handle), "name": user.upn, "displayName": user.display_name},
                "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
                "excludeCredentials": [
                    {"id": _excluded_id(m.id, version), "type": "public-key", "transports": ["usb", "nfc"]}
                    for m in self.methods_of(user_id)
                    if m.kind == MethodKind.FIDO2
                ],
                "authenticatorSelection": {
                    "authenticatorAttachment": "cross-platform",
                    "requireResidentKey": True,
                    "userVerification": "required",
                },
                "extensions": {
                    "hmacCreateSecret": True,
                    "enforceCredentialProtectionPolicy": True,
                    "credentialProtectionPolicy": "userVerificationOptional",
                },
            },
        }

    # -- POST fido2Methods ---------------------------------------------------------------------------

    def register_passkey(
        self, user_id: str, display_name: str | None, credential: dict[str, Any], version: str
    ) -> Fido2Method:
        user = self.users[user_id]
        self._check_user(user, version)
        parsed = _parse(credential)
        record = self._take_challenge(user_id, parsed.challenge)
        if self.find_method(user_id, MethodKind.FIDO2, method_id_for(parsed.credential_id)) is not None:
            raise bad_request("A FIDO2 credential with this id is already registered for the user.")
        model = self.key_models.get(parsed.aaguid)
        try:
            checked = webauthn_check.verify(
                credential, challenge=record.value, rp_id=ENTRA_RP["id"], roots=model.roots if model else []
            )
        except webauthn_check.RegistrationInvalid as exc:
            raise bad_request(f"The attestation response could not be verified: {exc}") from None
        self._check_model(checked)
        method = Fido2Method(
            method_id_for(checked.credential_id),
            user_id,
            (display_name or (model.name if model else "Security key"))[:30],
            checked.aaguid,
            model.name if model else None,
            self.clock.now(),
            attestation_level="attested" if checked.attested else "notAttested",
            attestation_certificates=list(parsed.certificate_thumbprints) if checked.attested else [],
        )
        self._attach(user_id, method)
        return method

    def _check_user(self, user: SimUser, version: str) -> None:
        p = self.fido2_policy
        if user.is_external_guest:
            raise bad_request("Passkeys cannot be registered for external guest users.")
        if not in_scope(p.state, p.include_targets, p.exclude_targets, self.group_ids_of(user.id)):
            raise policy_refusal("Fido2")
        if version != "beta" and not p.is_self_service_registration_allowed:
            # v1.0 known issue: provisioning needs the policy's "Allow self-service setup".
            raise policy_refusal("Fido2")

    def _take_challenge(self, user_id: str, challenge: str) -> ChallengeRecord:
        """Single use: a challenge is spent by the first registration that presents it."""
        record = self.challenges.get(challenge)
        if record is None or record.user_id != user_id:
            raise bad_request("The challenge is invalid or was not issued for this user.", "invalidChallenge")
        now = self.clock.now()
        if record.used_at is not None:
            raise bad_request(
                "The challenge was already used. Request new creation options.", "invalidChallenge"
            )
        record.used_at = now
        if now >= record.expires:
            raise bad_request("The challenge has expired. Request new creation options.", "invalidChallenge")
        return record

    def _check_model(self, checked: webauthn_check.CheckedRegistration) -> None:
        p = self.fido2_policy
        if not p.key_restrictions.permits(checked.aaguid):
            raise bad_request(
                "The security key model is not allowed by the FIDO2 key restrictions of the authentication "
                f"methods policy. AAGUID [{checked.aaguid}]."
            )
        if p.is_attestation_enforced and not checked.attested:
            raise bad_request(
                "Attestation is enforced by the authentication methods policy and the security key's "
                "attestation could not be verified against a trusted root."
            )


def _parse(credential: dict[str, Any]) -> webauthn_check.ParsedRegistration:
    try:
        return webauthn_check.parse(credential)
    except webauthn_check.RegistrationInvalid as exc:
        raise bad_request(f"The attestation response could not be verified: {exc}") from None


def _excluded_id(method_id: str, version: str) -> str:
    """beta: the method id as is (base64url plus a padding-count digit); v1.0: plain unpadded base64url."""
    if version == "beta" or not method_id or method_id[-1] not in "012":
        return method_id
    return method_id[:-1]


__all__ = ["GraphError", "PasskeyState"]
