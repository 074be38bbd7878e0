"""Provisioning a passkey on a user's behalf through the gateway, against the Graph simulator: creation
options on v1.0 and beta, registration verified by the simulator, refusals mapped to precise errors,
and throttling honoured."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from agent.keys.secret import Pin
from agent.provision import Requirements, provision
from agent.softkey import SoftAuthenticator, SoftCtapDevice, root_certificate_pem, soft_key_model
from bot.clock import FrozenClock
from bot.config import Settings
from bot.directory import (
    AttestationRejected,
    ChallengeInvalid,
    Fido2Attestation,
    Fido2CreationOptions,
    InvalidRequest,
    KeyAlreadyRegistered,
    KeyModelNotAllowed,
    MethodKind,
    Throttled,
    Unavailable,
    build_directory,
)
from bot.directory.errors import AlreadyExists, DirectoryError, NotFound
from bot.directory.fido2 import classify_fido2_error
from bot.directory.graph import GraphDirectory
from bot.directory.resilience import RetryPolicy
from bot.sandbox.graph_sim import Fault, GraphSimulator, KeyRestrictions, SimUser

TOKEN = "sim-graph-token"
FAST = RetryPolicy(budget_seconds=1.5, base_backoff=0.05)
OPTIONS_PATH = r"/fido2Methods/creationOptions"
REGISTER_PATH = r"/authentication/fido2Methods$"
SOFT_AAGUID = soft_key_model().aaguid


@pytest.fixture
async def sim(clock: FrozenClock) -> AsyncIterator[GraphSimulator]:
    simulator = GraphSimulator(clock, token=TOKEN)
    simulator.tenant.trust_key_model(SOFT_AAGUID, "keydesk soft key", root_certificate_pem())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def directory(sim: GraphSimulator) -> AsyncIterator[GraphDirectory]:
    settings = Settings(_env_file=None, graph_url=sim.base_url, graph_token=TOKEN, graph_timeout_seconds=5)
    gateway = build_directory(settings, retry_policy=FAST)
    yield gateway
    await gateway.close()


@pytest.fixture
def ada(sim: GraphSimulator) -> SimUser:
    return sim.tenant.add_user("Ada Lovelace", "ada@contoso.com")


def make_passkey(
    options: Fido2CreationOptions, clock: FrozenClock, pin: str = "48291537"
) -> Fido2Attestation:
    """The agent's half, on a fresh soft key."""
    device = SoftCtapDevice(SoftAuthenticator())
    made = provision(device, options.as_json(), Pin(pin), Requirements(min_pin_length=6), now=clock.now)
    return Fido2Attestation.from_public_key_credential(made.public_key_credential())


# --- creation options ---------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [None, 5])
async def test_five_minutes_or_unset_uses_v1(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock, minutes: int | None
) -> None:
    options = await directory.fido2_creation_options(ada.id, minutes)

    [request] = sim.requests
    assert request.version == "v1.0" and request.target.endswith("/fido2Methods/creationOptions()")
    assert options.api_version == "v1.0"
    assert options.challenge_expires == clock.now() + timedelta(minutes=5)
    assert options.rp_id == "login.microsoft.com" and options.user_name == "ada@contoso.com"
    public_key = options.public_key
    assert public_key["authenticatorSelection"]["userVerification"] == "required"
    assert public_key["extensions"]["hmacCreateSecret"] is True
    assert options.as_json()["challengeTimeoutDateTime"] == "2026-11-23T09:05:00Z"


async def test_a_longer_challenge_uses_beta_without_the_sdk_url_bug(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    sim.tenant.add_fido2(ada.id)
    options = await directory.fido2_creation_options(ada.id, 60 * 24)

    [request] = sim.requests
    assert request.version == "beta"
    assert request.target.endswith("/creationOptions(challengeTimeoutInMinutes=1440)")
    assert "@" not in request.target
    assert options.api_version == "beta"
    assert options.challenge_expires == clock.now() + timedelta(days=1)
    [excluded] = options.public_key["excludeCredentials"]
    assert excluded["id"][-1] in "012"  # beta's padding-count digit, unwrapped from "value"

    by_upn = await directory.fido2_creation_options("ada@contoso.com", 30)
    assert by_upn.user_name == "ada@contoso.com"
    assert "/users/ada%40contoso.com/" in sim.requests[-1].target
    with pytest.raises(InvalidRequest):
        await directory.fido2_creation_options("../me", 30)


async def test_the_beta_sdk_url_as_built_is_refused_by_the_simulator(
    sim: GraphSimulator, ada: SimUser
) -> None:
    broken = (
        f"{sim.beta_url}/users/{ada.id}/authentication/fido2Methods/"
        "creationOptions(challengeTimeoutInMinutes=@challengeTimeoutInMinutes)?challengeTimeoutInMinutes=30"
    )
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        answer = await http.get(broken)
        on_v1 = await http.get(broken.replace("/beta/", "/v1.0/"))
    assert answer.status_code == 400 and "alias" in answer.json()["error"]["message"]
    assert on_v1.status_code == 400


@pytest.mark.parametrize("minutes", [4, 43201])
async def test_a_timeout_outside_5_to_43200_is_refused_before_graph(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, minutes: int
) -> None:
    with pytest.raises(InvalidRequest):
        await directory.fido2_creation_options(ada.id, minutes)
    assert sim.requests == []


async def test_options_for_a_user_outside_the_fido2_policy_are_refused(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.tenant.fido2_policy.state = "disabled"
    with pytest.raises(InvalidRequest) as caught:
        await directory.fido2_creation_options(ada.id)
    assert type(caught.value) is InvalidRequest


# --- registration ------------------------------------------------------------------------------------


async def test_a_verified_registration_is_stored_with_schema_fields_only(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    options = await directory.fido2_creation_options(ada.id)
    method = await directory.register_fido2(ada.id, "Desk key 0001", make_passkey(options, clock))

    assert (method.kind, method.display_name, method.aaguid, method.model) == (
        MethodKind.FIDO2,
        "Desk key 0001",
        SOFT_AAGUID,
        "keydesk soft key",
    )
    [post] = sim.requests_to("POST", REGISTER_PATH)
    assert post.status == 201 and set(post.json) == {"@odata.type", "displayName", "publicKeyCredential"}
    assert set(post.json["publicKeyCredential"]) == {"id", "response", "clientExtensionResults"}
    assert post.json["publicKeyCredential"]["clientExtensionResults"] == {"hmacCreateSecret": True}
    [stored] = [m for m in sim.tenant.methods_of(ada.id) if m.kind.value == "fido2Methods"]
    assert stored.attestation_level == "attested" and stored.id == method.id


async def test_a_blocked_key_model_is_refused(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    sim.tenant.fido2_policy.key_restrictions = KeyRestrictions(True, "block", [SOFT_AAGUID])
    options = await directory.fido2_creation_options(ada.id)
    with pytest.raises(KeyModelNotAllowed) as caught:
        await directory.register_fido2(ada.id, "Desk key", make_passkey(options, clock))
    assert caught.value.status == 400 and "not allow this security key model" in str(caught.value)
    assert [m for m in sim.tenant.methods_of(ada.id) if m.kind.value == "fido2Methods"] == []


async def test_an_unattested_model_is_refused_when_attestation_is_enforced(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    sim.tenant.key_models[SOFT_AAGUID].roots.clear()  # nothing proves this model any more
    options = await directory.fido2_creation_options(ada.id)
    with pytest.raises(KeyModelNotAllowed):
        await directory.register_fido2(ada.id, "Desk key", make_passkey(options, clock))

    sim.tenant.fido2_policy.is_attestation_enforced = False
    options = await directory.fido2_creation_options(ada.id)
    method = await directory.register_fido2(ada.id, "Desk key", make_passkey(options, clock))
    assert method.kind is MethodKind.FIDO2


async def test_an_expired_challenge_is_refused(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    options = await directory.fido2_creation_options(ada.id)
    attestation = make_passkey(options, clock)
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(ChallengeInvalid) as caught:
        await directory.register_fido2(ada.id, "Desk key", attestation)
    assert "expired or was already used" in str(caught.value)


async def test_a_replayed_registration_is_refused(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    options = await directory.fido2_creation_options(ada.id)
    attestation = make_passkey(options, clock)
    await directory.register_fido2(ada.id, "Desk key", attestation)
    with pytest.raises(ChallengeInvalid):
        await directory.register_fido2(ada.id, "Desk key", attestation)
    bob = sim.tenant.add_user("Bob", "bob@contoso.com")
    with pytest.raises(ChallengeInvalid):  # a challenge is bound to the user it was issued for
        await directory.register_fido2(bob.id, "Desk key", attestation)


async def test_a_tampered_registration_does_not_verify(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    options = await directory.fido2_creation_options(ada.id)
    good = make_passkey(options, clock)
    client_data = json.loads(_b64decode(good.client_data_json))
    client_data["origin"] = "https://login.microsoftonline.com"
    forged = Fido2Attestation(
        good.credential_id, _b64encode(json.dumps(client_data).encode()), good.attestation_object
    )
    with pytest.raises(AttestationRejected):
        await directory.register_fido2(ada.id, "Desk key", forged)


# --- throttling and failures -----------------------------------------------------------------------


async def test_429_with_retry_after_is_honoured_on_both_calls(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    sim.add_fault(Fault(method="GET", path=OPTIONS_PATH, status=429, retry_after=0.3))
    started = time.monotonic()
    options = await directory.fido2_creation_options(ada.id)
    assert time.monotonic() - started >= 0.3
    assert [r.status for r in sim.requests_to("GET", OPTIONS_PATH)] == [429, 200]

    sim.add_fault(Fault(method="POST", path=REGISTER_PATH, status=429, retry_after=0.2))
    method = await directory.register_fido2(ada.id, "Desk key", make_passkey(options, clock))
    assert [r.status for r in sim.requests_to("POST", REGISTER_PATH)] == [429, 201]
    assert method.kind is MethodKind.FIDO2
    assert directory.metrics["register_fido2"].throttled == 1


async def test_a_long_retry_after_raises_throttled(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(Fault(method="GET", path=OPTIONS_PATH, status=429, retry_after=120))
    with pytest.raises(Throttled) as caught:
        await directory.fido2_creation_options(ada.id, 30)
    assert caught.value.retry_after == 120


async def test_a_5xx_on_registration_is_not_retried(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, clock: FrozenClock
) -> None:
    options = await directory.fido2_creation_options(ada.id)
    sim.add_fault(Fault(method="POST", path=REGISTER_PATH, status=503))
    with pytest.raises(Unavailable):
        await directory.register_fido2(ada.id, "Desk key", make_passkey(options, clock))
    assert len(sim.requests_to("POST", REGISTER_PATH)) == 1


# --- error classification (Graph documents no codes for these) ----------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AlreadyExists("conflict", status=409), KeyAlreadyRegistered),
        (
            InvalidRequest("A FIDO2 credential with this id is already registered", status=400),
            KeyAlreadyRegistered,
        ),
        (InvalidRequest("The challenge has expired.", status=400), ChallengeInvalid),
        (InvalidRequest("AAGUID is blocked by key restrictions", status=400), KeyModelNotAllowed),
        (InvalidRequest("Attestation is enforced and failed", status=400), KeyModelNotAllowed),
        (InvalidRequest("Invalid origin in clientData", status=400), AttestationRejected),
        (InvalidRequest("Something else", status=400), InvalidRequest),
        (NotFound("gone", code="Request_ResourceNotFound", status=404), NotFound),
    ],
)
def test_refusals_are_classified(error: DirectoryError, expected: type[DirectoryError]) -> None:
    assert type(classify_fido2_error(error)) is expected


def _b64decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_agents_json_becomes_graphs_public_key_credential() -> None:
    agent_json = {
        "id": "Y3JlZA",
        "response": {"clientDataJSON": "e30", "attestationObject": "o2Nm"},
        "clientExtensionResults": {"hmacCreateSecret": True},
    }
    attestation = Fido2Attestation.from_public_key_credential(agent_json)
    assert attestation.public_key_credential() == agent_json
    for broken in ({}, {"id": "x", "response": {}}, {**agent_json, "clientExtensionResults": "nope"}):
        with pytest.raises(ValueError):
            Fido2Attestation.from_public_key_credential(broken)
