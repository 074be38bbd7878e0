"""Entra-shaped creation options and a "prepared for pickup" soft key, for demos and tests.

The options follow what Graph's fido2 creationOptions returns (see the reference notes): rp
login.microsoft.com, resident key + UV required, direct attestation, ES256/RS256, hmacCreateSecret
and credProtect userVerificationOptional (enforced). The challenge is random, not a real JWE.
"""

from __future__ import annotations

import os
from typing import Any

from fido2.utils import websafe_encode

from agent.keys.makecred import Registration, create_passkey
from agent.keys.pin import force_pin_change, set_pin
from agent.keys.secret import Pin, random_pin
from agent.softkey.authenticator import SoftAuthenticator
from agent.softkey.device import SoftCtapDevice

ENTRA_RP = {"id": "login.microsoft.com", "name": "Microsoft"}


def entra_creation_options(
    upn: str = "ada.lovelace@contoso.example",
    display_name: str = "Ada Lovelace",
    *,
    user_handle: bytes | None = None,
    exclude_ids: list[str] | None = None,
    wrapped: bool = False,
) -> dict[str, Any]:
    public_key: dict[str, Any] = {
        "challenge": websafe_encode(os.urandom(512)),
        "timeout": 60000,
        "rp": dict(ENTRA_RP),
        "user": {
            "id": websafe_encode(user_handle or os.urandom(48)),
            "name": upn,
            "displayName": display_name,
        },
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
        "excludeCredentials": [{"type": "public-key", "id": i, "transports": []} for i in exclude_ids or []],
        "authenticatorSelection": {
            "authenticatorAttachment": "cross-platform",
            "requireResidentKey": True,
            "userVerification": "required",
        },
        "attestation": "direct",
        "extensions": {
            "hmacCreateSecret": True,
            "enforceCredentialProtectionPolicy": True,
            "credentialProtectionPolicy": "userVerificationOptional",
        },
    }
    body = {
        "@odata.type": "#microsoft.graph.webauthnCredentialCreationOptions",
        "challengeTimeoutDateTime": "2026-11-23T09:05:00Z",
        "publicKey": public_key,
    }
    return {"value": body} if wrapped else body


def prepare_for_pickup(key: SoftAuthenticator, upn: str = "ada.lovelace@contoso.example") -> Registration:
    """What the desk does for a key shipped to a user: random PIN, passkey, then forced PIN change.

    The PIN is random and dropped here: nobody at the desk ever sees it (in the product it goes to
    the user through the DM reveal)."""
    device = SoftCtapDevice(key)
    pin: Pin = random_pin(8)
    set_pin(device, pin)
    registration = create_passkey(device, entra_creation_options(upn), pin)
    force_pin_change(device, pin, min_length=6)
    return registration
