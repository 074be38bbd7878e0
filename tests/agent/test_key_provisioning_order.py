"""The order that works: set PIN -> create passkey -> (Graph registers it) -> force PIN change.
With a forced change pending the key refuses every PIN token, so provisioning after it fails."""

from __future__ import annotations

import pytest
from fido2.ctap import CtapError
from key_verifiers import verify_with_fido2_server, verify_with_py_webauthn

from agent.keys.credentials import list_credentials
from agent.keys.devices import OpenKey
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.inspect import inspect_key
from agent.keys.makecred import create_passkey
from agent.keys.pin import change_pin, force_pin_change, pin_status, set_pin, set_pin_policy
from agent.keys.secret import Pin
from agent.softkey import SoftAuthenticator, SoftCtapDevice, SoftKeySource
from agent.softkey.demo import entra_creation_options

UPN = "grace.hopper@contoso.example"


def test_the_provisioning_order_and_the_forced_change_trap(
    key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin
) -> None:
    set_pin(device, pin)
    options = entra_creation_options(UPN, "Grace Hopper")
    registration = create_passkey(device, options, pin)
    verify_with_py_webauthn(registration, options)  # "the server registers it"
    verify_with_fido2_server(registration, options)

    force_pin_change(device, pin, min_length=6)

    status = pin_status(device)
    assert status.force_change_pending and status.min_length == 6
    with pytest.raises(KeyOperationError) as caught:
        create_passkey(device, entra_creation_options("someone.else@contoso.example"), pin)
    assert caught.value.problem is Problem.FORCED_PIN_CHANGE_PENDING
    assert caught.value.ctap_code == CtapError.ERR.PIN_POLICY_VIOLATION
    assert "Change the PIN first" in caught.value.sentence
    with pytest.raises(KeyOperationError) as listing:
        list_credentials(device, pin)
    assert listing.value.problem is Problem.FORCED_PIN_CHANGE_PENDING
    assert len(key.discoverable) == 1


def test_the_user_changing_the_pin_completes_the_forced_change(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    create_passkey(device, entra_creation_options(UPN, "Grace Hopper"), pin)
    force_pin_change(device, pin)
    users_pin = Pin("97531864")

    with pytest.raises(KeyOperationError) as same:
        change_pin(device, pin, pin)  # a forced change needs a different PIN
    assert same.value.problem is Problem.PIN_REJECTED
    change_pin(device, pin, users_pin)

    assert not pin_status(device).force_change_pending
    [stored] = list_credentials(device, users_pin)
    assert (stored.rp_id, stored.user_name, stored.display_name, stored.cred_protect) == (
        "login.microsoft.com",
        UPN,
        "Grace Hopper",
        1,
    )


def test_forcing_first_makes_provisioning_fail(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    force_pin_change(device, pin)
    with pytest.raises(KeyOperationError) as caught:
        create_passkey(device, entra_creation_options(), pin)
    assert caught.value.problem is Problem.FORCED_PIN_CHANGE_PENDING


def test_a_fresh_key_takes_its_minimum_before_the_pin(device: SoftCtapDevice) -> None:
    set_pin_policy(device, None, min_length=8)  # no PIN yet: no token needed
    with pytest.raises(KeyOperationError) as short:
        set_pin(device, Pin("1234"))
    assert short.value.problem is Problem.PIN_REJECTED
    assert "8 to 63" in short.value.sentence
    set_pin(device, Pin("12345678"))
    assert pin_status(device).min_length == 8


def test_raising_the_minimum_above_the_current_pin_forces_a_change(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)  # 6 digits
    set_pin_policy(device, pin, min_length=8)
    assert pin_status(device).force_change_pending


def test_the_minimum_never_goes_down(device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    set_pin_policy(device, pin, min_length=6)
    with pytest.raises(KeyOperationError) as caught:
        set_pin_policy(device, pin, min_length=4)
    assert caught.value.problem is Problem.POLICY_REJECTED
    assert "only be raised" in caught.value.sentence


def test_inspect_shows_a_prepared_key_as_the_user_will_find_it(
    key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin
) -> None:
    set_pin(device, pin)
    create_passkey(device, entra_creation_options(UPN), pin)
    source = SoftKeySource(key)
    [descriptor] = source.scan()
    open_key = OpenKey(descriptor, source.open(descriptor))

    before = inspect_key(open_key, pin=pin)
    force_pin_change(device, pin, min_length=6)
    after = inspect_key(open_key, pin=pin)

    assert before.discoverable_credentials == 1 and not before.pin.force_change_pending
    assert after.pin.force_change_pending and after.pin.min_length == 6
    assert after.discoverable_credentials is None
    assert after.credentials_note == "cannot count while a PIN change is pending"
    assert after.remaining_discoverable == key.profile.capacity - 1
