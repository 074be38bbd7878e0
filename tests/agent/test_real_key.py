"""Opt-in tests against a real USB security key, for people with hardware on the desk.

    KEYDESK_REAL_KEY_TESTS=1 pytest tests/agent/test_real_key.py -s

Without KEYDESK_REAL_KEY_TESTS=1, or with no key (or several) plugged in, everything here is skipped.
By default only read-only checks run. KEYDESK_REAL_KEY_DESTRUCTIVE=1 adds the full desk cycle
(set PIN, create an Entra-shaped passkey, verify it twice, force a PIN change, then FACTORY-RESET the
key with you re-plugging and touching it). Like python-fido2's device tests, it refuses a key that
already has a PIN, so a key in use is never wiped by accident.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fido2.server import Fido2Server
from rich.console import Console
from webauthn import base64url_to_bytes, verify_registration_response

from agent.cli import ConsolePrompts, render_report
from agent.keys.devices import HidKeySource, OpenKey, open_only_key
from agent.keys.inspect import inspect_key
from agent.keys.makecred import create_passkey
from agent.keys.pin import force_pin_change, pin_status, set_pin
from agent.keys.reset import reset_key
from agent.keys.secret import random_pin
from agent.softkey.demo import entra_creation_options

ENABLED = os.environ.get("KEYDESK_REAL_KEY_TESTS") == "1"
DESTRUCTIVE = os.environ.get("KEYDESK_REAL_KEY_DESTRUCTIVE") == "1"

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(not ENABLED, reason="real-key tests are opt-in: set KEYDESK_REAL_KEY_TESTS=1"),
]


@pytest.fixture
def source() -> HidKeySource:
    hid = HidKeySource()
    found = hid.scan()
    if not found:
        pytest.skip("no security key is plugged in (or this account cannot open it: see the udev rule)")
    if len(found) > 1:
        pytest.skip("more than one security key is plugged in; leave only the test key")
    return hid


@pytest.fixture
def key(source: HidKeySource) -> Iterator[OpenKey]:
    opened = open_only_key(source)
    yield opened
    opened.close()


def test_inspect_reads_the_real_key(key: OpenKey) -> None:
    report = inspect_key(key)
    Console().print(render_report(report, 1, 1))
    assert report.aaguid and report.versions
    assert report.pin.min_length >= 4


def test_ping_echoes(key: OpenKey) -> None:
    ping = getattr(key.device, "ping", None)
    if ping is None:
        pytest.skip("not a HID device")
    assert ping(b"keydesk") == b"keydesk"


@pytest.mark.skipif(
    not DESTRUCTIVE, reason="destructive: set KEYDESK_REAL_KEY_DESTRUCTIVE=1 to provision and reset"
)
def test_the_whole_desk_cycle_then_reset(
    source: HidKeySource, key: OpenKey, capsys: pytest.CaptureFixture[str]
) -> None:
    if pin_status(key.device).is_set:
        pytest.skip("the key already has a PIN; reset it first (these tests never wipe a key in use)")
    pin = random_pin(8)  # never printed; the reset at the end makes it moot
    set_pin(key.device, pin)
    options = entra_creation_options("real.key.test@contoso.example", "Real key test")
    with capsys.disabled():
        registration = create_passkey(key.device, options, pin, on_touch=lambda: print("Touch the key now."))

    public_key = options["publicKey"]
    body = registration.public_key_credential()
    # Real attestation roots are vendor-specific: check everything but the chain here.
    verify_registration_response(
        credential={**body, "rawId": body["id"], "type": "public-key"},
        expected_challenge=base64url_to_bytes(public_key["challenge"]),
        expected_rp_id="login.microsoft.com",
        expected_origin="https://login.microsoft.com",
        require_user_verification=True,
    )
    server = Fido2Server({"id": "login.microsoft.com", "name": "Microsoft"}, attestation="none")
    auth_data = server.register_complete(
        {"challenge": public_key["challenge"], "user_verification": "required"},
        dict(registration.webauthn_json),
    )
    assert auth_data.extensions and auth_data.extensions.get("hmac-secret") is True

    force_pin_change(key.device, pin)
    assert pin_status(key.device).force_change_pending
    key.close()

    with capsys.disabled():
        outcome = reset_key(source, ConsolePrompts(Console()))
    assert outcome.aaguid == registration.aaguid
    fresh = open_only_key(source)
    try:
        assert not pin_status(fresh.device).is_set
    finally:
        fresh.close()
