"""Creating Entra passkeys: every registration is checked by py_webauthn AND python-fido2's server."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fido2.attestation import UntrustedAttestation
from fido2.ctap import CtapDevice
from fido2.utils import websafe_decode, websafe_encode
from key_verifiers import verify_with_fido2_server, verify_with_py_webauthn
from webauthn.helpers.exceptions import InvalidRegistrationResponse

from agent.keys.credentials import list_credentials
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.makecred import Registration, create_passkey
from agent.keys.pin import set_pin
from agent.keys.secret import Pin
from agent.softkey import SoftAuthenticator, SoftCtapDevice, SoftKeyProfile, Touch, soft_hid_device
from agent.softkey import make_credential as soft_make_credential
from agent.softkey.attestation import authority
from agent.softkey.demo import entra_creation_options


def _provision(device: CtapDevice, pin: Pin, **option_args: object) -> tuple[Registration, dict]:
    options = entra_creation_options(**option_args)  # type: ignore[arg-type]
    return create_passkey(device, options, pin), options


@pytest.mark.parametrize("transport", ["ctap", "hid"])
def test_registration_verifies_with_both_verifiers_and_carries_entra_extensions(
    key: SoftAuthenticator, pin: Pin, transport: str
) -> None:
    device = SoftCtapDevice(key) if transport == "ctap" else soft_hid_device(key)
    set_pin(device, pin)
    touches: list[str] = []
    options = entra_creation_options()

    registration = create_passkey(device, options, pin, on_touch=lambda: touches.append("touch"))

    verified = verify_with_py_webauthn(registration, options)
    auth_data = verify_with_fido2_server(registration, options)
    assert verified.fmt == "packed" and verified.user_verified
    assert verified.aaguid == registration.aaguid == key.profile.aaguid_text
    assert verified.credential_id == registration.credential_id
    assert auth_data.extensions == {"credProtect": 1, "hmac-secret": True}
    assert auth_data.is_user_present() and auth_data.is_user_verified()
    assert registration.client_extension_results == {"hmacCreateSecret": True}
    assert touches == ["touch"]


def test_client_data_names_the_entra_origin(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    registration, options = _provision(device, pin)
    client_data = json.loads(
        websafe_decode(registration.public_key_credential()["response"]["clientDataJSON"])
    )
    assert client_data == {
        "type": "webauthn.create",
        "challenge": options["publicKey"]["challenge"],
        "origin": "https://login.microsoft.com",
        "crossOrigin": False,
    }


def test_graph_body_has_exactly_the_fields_graph_takes(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    registration, _ = _provision(device, pin)
    body = registration.graph_body("Ada's YubiKey")
    assert set(body) == {"displayName", "publicKeyCredential"}
    credential = body["publicKeyCredential"]
    assert set(credential) == {"id", "response", "clientExtensionResults"}
    assert set(credential["response"]) == {"clientDataJSON", "attestationObject"}
    assert websafe_decode(credential["id"]) == registration.credential_id
    assert "=" not in credential["response"]["attestationObject"]  # unpadded base64url


def test_a_different_attestation_root_is_rejected_by_both_verifiers(device: SoftCtapDevice, pin: Pin) -> None:
    """Guards against vacuous checks: with an unrelated root, both verifiers must refuse."""
    set_pin(device, pin)
    registration, options = _provision(device, pin)
    stranger = authority.__wrapped__().certificate  # a fresh root, not the one that signed
    with pytest.raises(InvalidRegistrationResponse, match="chain"):
        verify_with_py_webauthn(registration, options, root_pem=stranger.public_bytes(Encoding.PEM))
    with pytest.raises(UntrustedAttestation):
        verify_with_fido2_server(registration, options, root_der=stranger.public_bytes(Encoding.DER))


def test_a_tampered_challenge_is_rejected_by_both_verifiers(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    registration, options = _provision(device, pin)
    forged = json.loads(json.dumps(options))
    forged["publicKey"]["challenge"] = websafe_encode(b"another challenge")
    with pytest.raises(InvalidRegistrationResponse):
        verify_with_py_webauthn(registration, forged)
    with pytest.raises(ValueError, match="challenge"):
        verify_with_fido2_server(registration, forged)


def test_options_wrapped_in_value_and_another_rp_id_derive_the_origin(
    device: SoftCtapDevice, pin: Pin
) -> None:
    set_pin(device, pin)
    options = entra_creation_options(wrapped=True)
    options["value"]["publicKey"]["rp"]["id"] = "login.microsoftonline.com"
    registration = create_passkey(device, options, pin)
    verify_with_py_webauthn(registration, options)
    assert verify_with_fido2_server(registration, options).rp_id_hash


@pytest.mark.parametrize("encoding", ["base64url", "base64", "digit_suffix"])
def test_a_key_already_holding_the_users_passkey_is_refused_in_any_id_encoding(
    key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin, encoding: str
) -> None:
    set_pin(device, pin)
    handle = b"u" * 48
    first, _ = _provision(device, pin, user_handle=handle)
    raw = first.credential_id
    encoded = {
        "base64url": websafe_encode(raw),
        "base64": base64.b64encode(raw).decode(),
        "digit_suffix": _digit_suffix(raw),
    }[encoding]

    with pytest.raises(KeyOperationError) as caught:
        _provision(device, pin, user_handle=handle, exclude_ids=[encoded])

    assert caught.value.problem is Problem.ALREADY_REGISTERED
    assert [c.credential_id for c in key.discoverable] == [raw]


def _digit_suffix(raw: bytes) -> str:
    padded = base64.urlsafe_b64encode(raw).decode()
    body = padded.rstrip("=")
    return body + str(len(padded) - len(body))


def test_a_full_key_says_so(pin: Pin) -> None:
    key = SoftAuthenticator(SoftKeyProfile(capacity=1))
    device = SoftCtapDevice(key)
    set_pin(device, pin)
    _provision(device, pin, upn="first@contoso.example")
    with pytest.raises(KeyOperationError) as caught:
        _provision(device, pin, upn="second@contoso.example")
    assert caught.value.problem is Problem.KEY_FULL
    assert "no room" in caught.value.sentence


def test_no_pin_on_the_key_means_set_one_first(device: SoftCtapDevice, pin: Pin) -> None:
    with pytest.raises(KeyOperationError) as caught:
        _provision(device, pin)
    assert caught.value.problem is Problem.PIN_NOT_SET


def test_wrong_pin_reports_tries_left(key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    with pytest.raises(KeyOperationError) as caught:
        _provision(device, Pin("000000"))
    assert caught.value.problem is Problem.WRONG_PIN
    assert caught.value.retries_left == 7
    assert "7 tries left" in caught.value.sentence
    assert key.credentials == []


@pytest.mark.parametrize(
    ("touch", "problem"), [(Touch.NOT_GIVEN, Problem.NOT_TOUCHED), (Touch.DENIED, Problem.DENIED)]
)
def test_no_touch_no_passkey(
    key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin, touch: Touch, problem: Problem
) -> None:
    set_pin(device, pin)
    key.switches = replace(key.switches, touch=touch)
    with pytest.raises(KeyOperationError) as caught:
        _provision(device, pin)
    assert caught.value.problem is problem
    assert key.credentials == []


def test_a_u2f_only_device_is_not_a_fido2_key(pin: Pin) -> None:
    device = SoftCtapDevice(SoftAuthenticator(SoftKeyProfile(ctap2=False)))
    with pytest.raises(KeyOperationError) as caught:
        _provision(device, pin)
    assert caught.value.problem is Problem.NOT_FIDO2


def test_a_key_without_hmac_secret_is_refused_before_anything_is_written(pin: Pin) -> None:
    key = SoftAuthenticator(SoftKeyProfile(extensions=("credProtect",)))
    device = SoftCtapDevice(key)
    set_pin(device, pin)
    with pytest.raises(KeyOperationError) as caught:
        _provision(device, pin)
    assert caught.value.problem is Problem.NOT_SUPPORTED
    assert "hmac-secret" in caught.value.sentence
    assert key.credentials == []


def test_a_silently_dropped_hmac_secret_is_caught_and_the_passkey_removed(
    key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trap: python-fido2 (or a key) drops hmac-secret without an error. We check authData."""
    original = soft_make_credential._extension_outputs

    def drop_hmac(*args: object) -> dict:
        out = original(*args)  # type: ignore[arg-type]
        out.pop("hmac-secret", None)
        return out

    monkeypatch.setattr(soft_make_credential, "_extension_outputs", drop_hmac)
    set_pin(device, pin)
    with pytest.raises(KeyOperationError) as caught:
        _provision(device, pin)
    assert caught.value.problem is Problem.EXTENSION_DROPPED
    assert list_credentials(device, pin) == []


def test_unreadable_options_are_a_typed_error(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    with pytest.raises(KeyOperationError) as caught:
        create_passkey(device, {"publicKey": {"rp": {"name": "x"}}}, pin)
    assert caught.value.problem is Problem.BAD_OPTIONS
