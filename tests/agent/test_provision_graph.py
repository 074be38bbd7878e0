"""End to end, one key: the gateway gets creation options from the Graph simulator, the agent provisions
the soft key, two independent verifiers accept the attestation, the simulator registers it, the
gateway lists it, and only then the key is set to force a PIN change."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from key_verifiers import verify_with_fido2_server, verify_with_py_webauthn

from agent.keys.credentials import list_credentials
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.pin import pin_status
from agent.provision import Requirements, finish_provisioning, provision, random_pin
from agent.softkey import SoftAuthenticator, SoftCtapDevice, root_certificate_pem, soft_key_model
from bot.clock import FrozenClock
from bot.config import Settings
from bot.directory import Fido2Attestation, MethodKind, build_directory
from bot.directory.graph import GraphDirectory
from bot.sandbox.graph_sim import GraphSimulator, SimUser

TOKEN = "sim-graph-token"
SOFT = soft_key_model()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def sim(clock: FrozenClock) -> AsyncIterator[GraphSimulator]:
    simulator = GraphSimulator(clock, token=TOKEN)
    simulator.tenant.trust_key_model(SOFT.aaguid, SOFT.name, root_certificate_pem())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def directory(sim: GraphSimulator) -> AsyncIterator[GraphDirectory]:
    settings = Settings(_env_file=None, graph_url=sim.base_url, graph_token=TOKEN, graph_timeout_seconds=5)
    gateway = build_directory(settings)
    yield gateway
    await gateway.close()


@pytest.fixture
def grace(sim: GraphSimulator) -> SimUser:
    return sim.tenant.add_user("Grace Hopper", "grace@contoso.com")


@pytest.mark.parametrize(("minutes", "version"), [(None, "v1.0"), (60 * 24 * 7, "beta")])
async def test_provision_a_key_for_pickup_end_to_end(
    directory: GraphDirectory,
    sim: GraphSimulator,
    grace: SimUser,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    minutes: int | None,
    version: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = SoftAuthenticator()
    device = SoftCtapDevice(key)
    wanted = Requirements(min_pin_length=8, force_pin_change=True)
    pin = random_pin(wanted, key_min_length=pin_status(device).min_length)

    options = await directory.fido2_creation_options(grace.id, minutes)
    assert options.api_version == version
    as_sent = json.loads(json.dumps(options.as_json()))  # what travels to the agent
    made = provision(device, as_sent, pin, wanted, now=clock.now)

    verify_with_py_webauthn(made.registration, as_sent)
    verify_with_fido2_server(made.registration, as_sent)
    attestation = Fido2Attestation.from_public_key_credential(made.public_key_credential())
    method = await directory.register_fido2(
        grace.id, "Desk key KD-SOFT-0001", attestation, api_version=options.api_version
    )
    assert not pin_status(device).force_change_pending  # the order: registered first
    finish_provisioning(device, pin, wanted)

    listed = [m for m in await directory.list_methods(grace.id) if m.kind is MethodKind.FIDO2]
    assert [(m.id, m.display_name, m.aaguid, m.model) for m in listed] == [
        (method.id, "Desk key KD-SOFT-0001", SOFT.aaguid, SOFT.name)
    ]
    status = pin_status(device)
    assert status.force_change_pending and status.min_length == 8
    with pytest.raises(KeyOperationError) as blocked:
        list_credentials(device, pin)  # until the user changes the PIN, the key refuses the old one
    assert blocked.value.problem is Problem.FORCED_PIN_CHANGE_PENDING
    [stored] = key.discoverable
    assert (stored.rp_id, stored.user["name"], stored.cred_protect) == (
        "login.microsoft.com",
        "grace@contoso.com",
        1,
    )
    assert stored.cred_random is not None  # hmac-secret is on the credential

    secret = pin.reveal()
    assert all(secret not in json.dumps(r.json) for r in sim.requests if r.json is not None)
    assert secret not in caplog.text


async def test_a_second_key_for_the_same_user_is_fine_but_the_same_key_is_refused(
    directory: GraphDirectory, grace: SimUser, clock: FrozenClock
) -> None:
    device = SoftCtapDevice(SoftAuthenticator())
    pin = random_pin()
    first = await directory.fido2_creation_options(grace.id, 30)
    made = provision(device, first.as_json(), pin, now=clock.now)
    attestation = Fido2Attestation.from_public_key_credential(made.public_key_credential())
    await directory.register_fido2(grace.id, "Key 1", attestation, api_version=first.api_version)

    again = await directory.fido2_creation_options(grace.id, 30)  # excludeCredentials names key 1
    with pytest.raises(KeyOperationError) as caught:
        provision(device, again.as_json(), pin, now=clock.now)
    assert caught.value.problem is Problem.ALREADY_REGISTERED

    other = SoftCtapDevice(SoftAuthenticator())
    made = provision(other, again.as_json(), random_pin(), now=clock.now)
    attestation = Fido2Attestation.from_public_key_credential(made.public_key_credential())
    await directory.register_fido2(grace.id, "Key 2", attestation, api_version=again.api_version)
    fido2 = [m for m in await directory.list_methods(grace.id) if m.kind is MethodKind.FIDO2]
    assert [m.display_name for m in fido2] == ["Key 1", "Key 2"]
