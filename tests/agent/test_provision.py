"""The agent's provisioning routine on the soft key: order of operations, refusals before the key is
touched, and the random PIN for keys prepared for pickup."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from key_verifiers import verify_with_fido2_server, verify_with_py_webauthn

from agent.keys.credentials import list_credentials
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.pin import pin_status, set_pin, set_pin_policy
from agent.keys.secret import Pin
from agent.provision import Requirements, finish_provisioning, is_trivial, provision, random_pin
from agent.softkey import SoftAuthenticator, SoftCtapDevice, SoftKeyProfile
from agent.softkey.demo import entra_creation_options

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
UPN = "grace.hopper@contoso.example"


def options(expires_in: timedelta | None = timedelta(minutes=5), **kwargs: Any) -> dict[str, Any]:
    body = entra_creation_options(UPN, "Grace Hopper", **kwargs)
    body["challengeTimeoutDateTime"] = (
        (NOW + expires_in).isoformat().replace("+00:00", "Z") if expires_in is not None else None
    )
    return body


def at_now() -> datetime:
    return NOW


def test_a_fresh_key_gets_the_pin_then_the_passkey_then_the_forced_change(
    key: SoftAuthenticator, device: SoftCtapDevice
) -> None:
    pin = Pin("48291537")
    wanted = Requirements(min_pin_length=8, force_pin_change=True)
    creation = options()

    made = provision(device, creation, pin, wanted, now=at_now)

    assert made.pin_was_set and len(key.discoverable) == 1
    verify_with_py_webauthn(made.registration, creation)
    verify_with_fido2_server(made.registration, creation)
    assert made.registration.authenticator_extensions == {"credProtect": 1, "hmac-secret": True}
    assert not pin_status(device).force_change_pending  # not yet: Graph has not registered it

    finish_provisioning(device, pin, wanted)
    status = pin_status(device)
    assert status.force_change_pending and status.min_length == 8


def test_a_key_with_a_pin_is_verified_before_the_touch(
    key: SoftAuthenticator, device: SoftCtapDevice
) -> None:
    set_pin(device, Pin("11223344"))
    touches: list[str] = []
    with pytest.raises(KeyOperationError) as caught:
        provision(device, options(), Pin("99887766"), on_touch=lambda: touches.append("touch"), now=at_now)
    assert caught.value.problem is Problem.WRONG_PIN and caught.value.retries_left == 7
    assert touches == [] and key.discoverable == []

    made = provision(device, options(), Pin("11223344"), now=at_now)
    assert not made.pin_was_set and len(key.discoverable) == 1


def test_a_pin_shorter_than_the_policy_is_refused_before_anything_changes(
    key: SoftAuthenticator, device: SoftCtapDevice
) -> None:
    with pytest.raises(KeyOperationError) as caught:
        provision(device, options(), Pin("123456"), Requirements(min_pin_length=8), now=at_now)
    assert caught.value.problem is Problem.PIN_REJECTED and "at least 8" in caught.value.sentence
    assert not pin_status(device).is_set and key.discoverable == []


def test_an_expired_challenge_is_refused_before_the_key_is_touched(
    key: SoftAuthenticator, device: SoftCtapDevice
) -> None:
    with pytest.raises(KeyOperationError) as caught:
        provision(device, options(timedelta(seconds=-1)), Pin("48291537"), now=at_now)
    assert caught.value.problem is Problem.CHALLENGE_EXPIRED
    assert "expired" in caught.value.sentence
    assert not pin_status(device).is_set


def test_a_pending_forced_change_is_reported_first(key: SoftAuthenticator, device: SoftCtapDevice) -> None:
    pin = Pin("48291537")
    set_pin(device, pin)
    set_pin_policy(device, pin, force_change=True)
    with pytest.raises(KeyOperationError) as caught:
        provision(device, options(), pin, now=at_now)
    assert caught.value.problem is Problem.FORCED_PIN_CHANGE_PENDING


def test_a_ctap20_key_cannot_be_prepared_for_someone_else() -> None:
    old = SoftAuthenticator(profile=SoftKeyProfile(ctap21=False))
    device = SoftCtapDevice(old)
    with pytest.raises(KeyOperationError) as caught:
        provision(device, options(), Pin("48291537"), Requirements(force_pin_change=True), now=at_now)
    assert caught.value.problem is Problem.NOT_SUPPORTED and "CTAP 2.1" in caught.value.sentence
    assert not pin_status(device).is_set


def test_a_key_already_holding_the_users_passkey_is_refused(
    key: SoftAuthenticator, device: SoftCtapDevice
) -> None:
    pin = Pin("48291537")
    handle = b"u" * 48
    first = provision(device, options(user_handle=handle), pin, now=at_now)
    method_id = _graph_method_id(first.credential_id)  # beta's digit-suffix form
    with pytest.raises(KeyOperationError) as caught:
        provision(device, options(user_handle=handle, exclude_ids=[method_id]), pin, now=at_now)
    assert caught.value.problem is Problem.ALREADY_REGISTERED
    assert len(list_credentials(device, pin)) == 1


def test_a_key_without_hmac_secret_is_refused() -> None:
    plain = SoftAuthenticator(profile=SoftKeyProfile(extensions=("credProtect", "minPinLength")))
    device = SoftCtapDevice(plain)
    with pytest.raises(KeyOperationError) as caught:
        provision(device, options(), Pin("48291537"), now=at_now)
    assert caught.value.problem is Problem.NOT_SUPPORTED and "hmac-secret" in caught.value.sentence
    assert plain.discoverable == []


def test_finish_never_lowers_the_minimum_and_can_skip_the_forced_change(device: SoftCtapDevice) -> None:
    pin = Pin("48291537")
    provision(device, options(), pin, now=at_now)
    set_pin_policy(device, pin, min_length=8)
    finish_provisioning(device, pin, Requirements(min_pin_length=6, force_pin_change=False))
    assert pin_status(device).min_length == 8 and not pin_status(device).force_change_pending


def test_the_ceremony_timeout_never_runs_past_the_challenge(device: SoftCtapDevice) -> None:
    creation = options(timedelta(seconds=30))
    creation["publicKey"]["timeout"] = 0  # beta: no ceremony timeout of its own
    made = provision(device, creation, Pin("48291537"), now=at_now)
    assert made.registration.attestation_format == "packed"


def test_random_pins_are_long_enough_and_never_trivial() -> None:
    pins = [random_pin(Requirements(min_pin_length=10), key_min_length=4) for _ in range(200)]
    assert {p.length for p in pins} == {10}
    assert all(p.reveal().isdigit() and not is_trivial(p.reveal()) for p in pins)
    assert random_pin(key_min_length=12).length == 12
    assert random_pin().length == 8
    assert "*" in repr(pins[0]) and pins[0].reveal() not in f"{pins[0]} {pins[0]!r}"


@pytest.mark.parametrize(
    ("digits", "trivial"),
    [("00000000", True), ("12345678", True), ("87654321", True), ("89012345", True), ("48291537", False)],
)
def test_trivial_pins(digits: str, trivial: bool) -> None:
    assert is_trivial(digits) is trivial


def test_requirements_refuse_an_impossible_minimum() -> None:
    with pytest.raises(ValueError):
        Requirements(min_pin_length=3)
    assert replace(Requirements(), min_pin_length=None).force_pin_change


def _graph_method_id(credential_id: bytes) -> str:
    import base64

    encoded = base64.urlsafe_b64encode(credential_id).decode()
    stripped = encoded.rstrip("=")
    return f"{stripped}{len(encoded) - len(stripped)}"
