"""Two independent verifiers for registrations the agent produces: py_webauthn and python-fido2's server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fido2.attestation import AttestationVerifier
from fido2.server import Fido2Server
from fido2.webauthn import AuthenticatorData
from webauthn import base64url_to_bytes, verify_registration_response
from webauthn.helpers.structs import AttestationFormat
from webauthn.registration.verify_registration_response import VerifiedRegistration

from agent.keys.makecred import Registration
from agent.softkey import root_certificate_der, root_certificate_pem


class _SoftRoot(AttestationVerifier):
    def __init__(self, root_der: bytes) -> None:
        super().__init__()
        self._root = root_der

    def ca_lookup(self, attestation_result: Any, auth_data: AuthenticatorData) -> bytes | None:
        return self._root


def verify_with_py_webauthn(
    registration: Registration, options: Mapping[str, Any], root_pem: bytes | None = None
) -> VerifiedRegistration:
    """py_webauthn (Duo Labs): Graph's body lacks rawId/type, which py_webauthn wants."""
    public_key = options.get("value", options)["publicKey"]
    body = registration.public_key_credential()
    rp_id = public_key["rp"]["id"]
    return verify_registration_response(
        credential={**body, "rawId": body["id"], "type": "public-key"},
        expected_challenge=base64url_to_bytes(public_key["challenge"]),
        expected_rp_id=rp_id,
        expected_origin=f"https://{rp_id}",
        require_user_verification=True,
        pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: [root_pem or root_certificate_pem()]},
    )


def verify_with_fido2_server(
    registration: Registration, options: Mapping[str, Any], root_der: bytes | None = None
) -> AuthenticatorData:
    """python-fido2's server side, with the packed certificate rules and the soft key's root pinned."""
    public_key = options.get("value", options)["publicKey"]
    rp_id = public_key["rp"]["id"]
    server = Fido2Server(
        {"id": rp_id, "name": "Microsoft"},
        attestation="direct",
        verify_origin=lambda origin: origin == f"https://{rp_id}",
        verify_attestation=_SoftRoot(root_der or root_certificate_der()),
    )
    state = {"challenge": public_key["challenge"], "user_verification": "required"}
    return server.register_complete(state, dict(registration.webauthn_json))
