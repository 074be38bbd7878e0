"""PIN handling (set, change, retries, blocking) and passkey listing/deletion through the agent's API."""

from __future__ import annotations

import pytest
from fido2.ctap2 import ClientPin, Ctap2
from fido2.ctap2.pin import PinProtocolV1

from agent.keys.credentials import count_credentials, delete_credential, list_credentials
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.makecred import create_passkey
from agent.keys.pin import change_pin, pin_status, set_pin, set_pin_policy
from agent.keys.secret import Pin
from agent.softkey import SoftAuthenticator, SoftCtapDevice, SoftKeyProfile
from agent.softkey.demo import entra_creation_options

WRONG = Pin("000000")


def _problem(call: object, *args: object, **kwargs: object) -> KeyOperationError:
    with pytest.raises(KeyOperationError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def test_set_then_change_pin(device: SoftCtapDevice, pin: Pin) -> None:
    assert not pin_status(device).is_set
    set_pin(device, pin)
    status = pin_status(device)
    assert status.is_set and status.retries == 8
    assert _problem(set_pin, device, pin).problem is Problem.PIN_ALREADY_SET
    change_pin(device, pin, Pin("13572468"))
    assert count_credentials(device, Pin("13572468")).existing == 0


def test_wrong_pins_count_down_then_the_key_wants_a_replug(
    key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin
) -> None:
    set_pin(device, pin)
    first = _problem(count_credentials, device, WRONG)
    second = _problem(count_credentials, device, WRONG)
    third = _problem(count_credentials, device, WRONG)
    assert (first.problem, first.retries_left) == (Problem.WRONG_PIN, 7)
    assert (second.problem, second.retries_left) == (Problem.WRONG_PIN, 6)
    assert third.problem is Problem.PIN_AUTH_BLOCKED
    assert "Unplug it, plug it back in" in third.sentence and "5 tries left" in third.sentence
    assert pin_status(device).power_cycle_required
    assert _problem(count_credentials, device, pin).problem is Problem.PIN_AUTH_BLOCKED  # even the right PIN

    key.power_cycle()
    device = SoftCtapDevice(key)
    assert count_credentials(device, pin).existing == 0
    assert pin_status(device).retries == 8


def test_the_last_wrong_pin_blocks_the_key_for_good(
    key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin
) -> None:
    set_pin(device, pin)
    key.preset_pin_retries(1)
    last = _problem(count_credentials, device, WRONG)
    assert last.problem is Problem.PIN_BLOCKED
    assert "Only a reset" in last.sentence
    key.power_cycle()
    assert _problem(count_credentials, SoftCtapDevice(key), pin).problem is Problem.PIN_BLOCKED
    assert pin_status(SoftCtapDevice(key)).retries == 0


def test_one_try_left_is_said_plainly(key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    key.preset_pin_retries(2)
    assert "One try left" in _problem(count_credentials, device, WRONG).sentence


def test_list_and_delete_passkeys(key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    ada = create_passkey(device, entra_creation_options("ada@contoso.example", "Ada"), pin)
    create_passkey(device, entra_creation_options("alan@contoso.example", "Alan"), pin)

    stored = list_credentials(device, pin)
    assert sorted(c.user_name or "" for c in stored) == ["ada@contoso.example", "alan@contoso.example"]
    assert all(c.rp_id == "login.microsoft.com" and c.cred_protect == 1 for c in stored)
    assert count_credentials(device, pin).remaining == key.profile.capacity - 2

    delete_credential(device, pin, ada.credential_id)
    assert [c.user_name for c in list_credentials(device, pin)] == ["alan@contoso.example"]
    assert _problem(delete_credential, device, pin, ada.credential_id).problem is Problem.CREDENTIAL_NOT_FOUND


def test_a_ctap20_key_cannot_list_passkeys_or_force_a_change(pin: Pin) -> None:
    device = SoftCtapDevice(SoftAuthenticator(SoftKeyProfile(ctap21=False)))
    set_pin(device, pin)
    assert _problem(list_credentials, device, pin).problem is Problem.NOT_SUPPORTED
    refused = _problem(set_pin_policy, device, pin, min_length=6)
    assert refused.problem is Problem.NOT_SUPPORTED and "CTAP 2.1" in refused.sentence


def test_pin_protocol_one_works_too(key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    ctap2 = Ctap2(device)
    token = ClientPin(ctap2, PinProtocolV1()).get_pin_token(
        pin.reveal(), ClientPin.PERMISSION.CREDENTIAL_MGMT
    )
    assert len(token) == 32


def test_a_token_for_one_job_cannot_do_another(device: SoftCtapDevice, pin: Pin) -> None:
    """Permissions are enforced: a credential-management token cannot change the key's config."""
    from fido2.ctap import CtapError
    from fido2.ctap2 import Config

    set_pin(device, pin)
    ctap2 = Ctap2(device)
    client_pin = ClientPin(ctap2)
    token = client_pin.get_pin_token(pin.reveal(), ClientPin.PERMISSION.CREDENTIAL_MGMT)
    with pytest.raises(CtapError) as caught:
        Config(ctap2, client_pin.protocol, token).set_min_pin_length(force_change_pin=True)
    assert caught.value.code == CtapError.ERR.PIN_AUTH_INVALID
    assert not pin_status(device).force_change_pending


def test_pin_text_never_reaches_errors(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    error = _problem(count_credentials, device, Pin("918273"))
    assert "918273" not in error.sentence and "918273" not in repr(error.args)
    assert pin.reveal() not in error.sentence
