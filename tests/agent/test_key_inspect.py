"""Inspect: what a technician learns about the key on the desk."""

from __future__ import annotations

import uuid

import pytest

from agent.keys.devices import OpenKey
from agent.keys.inspect import KeyPolicy, KeyReport, PolicyVerdict, inspect_key
from agent.keys.metadata import ModelCatalog
from agent.keys.pin import set_pin
from agent.keys.secret import Pin
from agent.softkey import SoftAuthenticator, SoftCtapDevice, SoftKeyProfile, SoftKeySource
from agent.softkey.demo import prepare_for_pickup

YUBIKEY_5_NFC = "2fc0579f-8113-47ea-b116-bb5a8db9202a"
TITAN = "42b4fb4a-2866-43b2-9bf7-6c6669c2e5d3"


def _inspect(key: SoftAuthenticator, **kwargs: object) -> KeyReport:
    source = SoftKeySource(key)
    [descriptor] = source.scan()
    return inspect_key(OpenKey(descriptor, source.open(descriptor)), **kwargs)  # type: ignore[arg-type]


def test_a_fresh_key() -> None:
    key = SoftAuthenticator(SoftKeyProfile(aaguid=uuid.UUID(YUBIKEY_5_NFC).bytes, firmware_version=0x050403))
    report = _inspect(key)
    assert (
        report.model_name == "YubiKey 5 Series with NFC" and report.model and report.model.vendor == "Yubico"
    )
    assert report.firmware == "5.4.3"
    assert report.serial_number == "KD-SOFT-0001"
    assert report.versions == ("FIDO_2_0", "FIDO_2_1")
    assert (report.pin.is_set, report.pin.retries, report.pin.min_length) == (False, None, 4)
    assert not report.pin.force_change_pending
    assert report.remaining_discoverable == 25
    assert report.entra_ready and report.desk_limits == ()
    assert report.policy is PolicyVerdict.NO_POLICY


def test_a_key_prepared_for_pickup() -> None:
    key = SoftAuthenticator()
    prepare_for_pickup(key)
    report = _inspect(key)
    assert report.pin.is_set and report.pin.retries == 8
    assert report.pin.force_change_pending and report.pin.min_length == 6
    assert report.discoverable_credentials is None and report.remaining_discoverable == 24
    assert report.model_name == "unknown model"  # the soft key is not in the shipped table


def test_counting_passkeys_needs_the_pin(key: SoftAuthenticator, device: SoftCtapDevice, pin: Pin) -> None:
    set_pin(device, pin)
    without = _inspect(key)
    assert without.discoverable_credentials is None
    assert without.credentials_note == "the PIN is needed to count them"
    assert _inspect(key, pin=pin).discoverable_credentials == 0


def test_no_serial_and_a_blocked_pin(pin: Pin) -> None:
    key = SoftAuthenticator(SoftKeyProfile(serial_number=None))
    set_pin(SoftCtapDevice(key), pin)
    key.preset_pin_retries(0)
    report = _inspect(key)
    assert report.serial_number is None
    assert report.pin.retries == 0


@pytest.mark.parametrize(
    ("allowed", "verdict"),
    [([YUBIKEY_5_NFC.upper(), TITAN], PolicyVerdict.ALLOWED), ([TITAN], PolicyVerdict.NOT_ALLOWED)],
)
def test_the_tenant_policy_verdict(allowed: list[str], verdict: PolicyVerdict) -> None:
    key = SoftAuthenticator(SoftKeyProfile(aaguid=uuid.UUID(YUBIKEY_5_NFC).bytes))
    assert _inspect(key, policy=KeyPolicy.allowing(allowed)).policy is verdict


def test_gaps_for_entra_and_limits_at_the_desk() -> None:
    old = SoftAuthenticator(SoftKeyProfile(ctap21=False, extensions=("credProtect",)))
    report = _inspect(old)
    assert not report.entra_ready
    assert report.entra_gaps == ("it lacks hmac-secret (Windows sign-in with the key needs it)",)
    assert report.desk_limits == (
        "cannot list or delete passkeys",
        "cannot set a minimum PIN length or force a PIN change",
    )
    assert report.credentials_note == "this key cannot count its passkeys"


def test_an_extra_catalog_entry_names_the_soft_key() -> None:
    from agent.softkey import soft_key_model

    report = _inspect(SoftAuthenticator(), catalog=ModelCatalog.bundled().with_models(soft_key_model()))
    assert report.model_name == "keydesk soft key (test authenticator)"
