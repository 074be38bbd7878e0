"""Check a passkey registration the way Entra does, with py_webauthn: clientData (type, challenge,
origin "https://" + rp id), authenticator data (rp id hash, user present and verified), the attestation
signature, and, when the tenant trusts roots for the key's AAGUID, the certificate chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webauthn import base64url_to_bytes, verify_registration_response
from webauthn.helpers import parse_attestation_object
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AttestationFormat

ACCEPTED_FORMATS = frozenset({AttestationFormat.PACKED, AttestationFormat.NONE})


class RegistrationInvalid(Exception):
    """The registration does not verify; the message says which check failed (no secrets in it)."""


@dataclass(frozen=True)
class ParsedRegistration:
    """What can be read before verifying: enough to find the challenge and the key model."""

    challenge: str
    credential_id: bytes
    aaguid: str
    fmt: str
    certificate_thumbprints: tuple[str, ...]


@dataclass(frozen=True)
class CheckedRegistration:
    credential_id: bytes
    aaguid: str
    attested: bool  # the chain verified against a root the tenant trusts for this AAGUID


def parse(public_key_credential: Mapping[str, Any]) -> ParsedRegistration:
    try:
        response = public_key_credential["response"]
        client_data = json.loads(base64url_to_bytes(str(response["clientDataJSON"])))
        attestation = parse_attestation_object(base64url_to_bytes(str(response["attestationObject"])))
        credential = attestation.auth_data.attested_credential_data
        if credential is None:
            raise RegistrationInvalid("the attestation object carries no credential")
        thumbprints = tuple(hashlib.sha1(c).hexdigest() for c in attestation.att_stmt.x5c or [])  # noqa: S324 - certificate thumbprints are SHA-1 by convention
        return ParsedRegistration(
            challenge=str(client_data["challenge"]),
            credential_id=credential.credential_id,
            aaguid=_aaguid_text(credential.aaguid),
            fmt=str(getattr(attestation.fmt, "value", attestation.fmt)),
            certificate_thumbprints=thumbprints,
        )
    except RegistrationInvalid:
        raise
    except (KeyError, TypeError, ValueError, WebAuthnException) as exc:
        raise RegistrationInvalid(
            f"the publicKeyCredential could not be read ({type(exc).__name__})"
        ) from exc


def verify(
    public_key_credential: Mapping[str, Any],
    *,
    challenge: str,
    rp_id: str,
    roots: Sequence[bytes],
) -> CheckedRegistration:
    """Verify signature, clientData and flags; then the chain when `roots` (PEM) are given."""
    parsed = parse(public_key_credential)
    if parsed.fmt not in ACCEPTED_FORMATS:
        raise RegistrationInvalid(
            f"attestation format '{parsed.fmt}' is not supported; only packed and none are accepted"
        )
    _check(public_key_credential, challenge, rp_id, None)
    attested = False
    if roots and parsed.fmt == AttestationFormat.PACKED:
        try:
            _check(public_key_credential, challenge, rp_id, list(roots))
            attested = True
        except RegistrationInvalid:
            attested = False
    return CheckedRegistration(parsed.credential_id, parsed.aaguid, attested)


def _check(credential: Mapping[str, Any], challenge: str, rp_id: str, roots: list[bytes] | None) -> None:
    body = {**credential, "rawId": credential.get("id"), "type": "public-key"}
    try:
        verify_registration_response(
            credential=dict(body),
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=f"https://{rp_id}",
            require_user_verification=True,
            pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: roots} if roots else None,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise RegistrationInvalid(str(exc) or type(exc).__name__) from exc


def _aaguid_text(raw: bytes) -> str:
    hex_ = raw.hex()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"
