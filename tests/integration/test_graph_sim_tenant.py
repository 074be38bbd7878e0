"""Graph simulator, tenant rules: TAP policy, method deletion, hardware OATH, self-service registration,
mail, and RFC 6238 codes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.clock import FrozenClock
from bot.sandbox.graph_sim import (
    PHONE_METHOD_IDS,
    YUBIKEY_5_NFC_AAGUID,
    GraphSimulator,
    KeyRestrictions,
    MethodKind,
    OathStatus,
    RegistrationRefused,
    TapUsability,
)
from bot.sandbox.graph_sim.sample import SampleIds, seed_sample
from bot.sandbox.graph_sim.totp import hotp, totp

CONVERGED = "Converged UserCredentialPolicy does not allow creating or updating this authentication method."
SOLO_AAGUID = "8876631b-d4a0-427f-5773-0ec71c9e0279"


@dataclass
class World:
    sim: GraphSimulator
    ids: SampleIds
    http: httpx.AsyncClient
    clock: FrozenClock

    async def create_tap(self, user_id: str, **body: Any) -> httpx.Response:
        return await self.http.post(
            f"/v1.0/users/{user_id}/authentication/temporaryAccessPassMethods", json=body
        )

    async def taps(self, user_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/v1.0/users/{user_id}/authentication/temporaryAccessPassMethods")
        return response.json()["value"]


@pytest.fixture
async def world(clock: FrozenClock) -> AsyncIterator[World]:
    sim = GraphSimulator(clock)
    ids = seed_sample(sim.tenant)
    await sim.start()
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": "Bearer sim-graph-token"}
    ) as http:
        yield World(sim, ids, http, clock)
    assert sim.internal_errors == []
    await sim.stop()


def message_of(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


# -- Temporary Access Pass ---------------------------------------------------------------------------------------


async def test_tap_defaults_come_from_the_policy(world: World) -> None:
    world.sim.tenant.tap_policy.default_lifetime_in_minutes = 120
    world.sim.tenant.tap_policy.default_length = 12
    created = (await world.create_tap(world.ids.ada)).json()
    assert (created["lifetimeInMinutes"], created["isUsableOnce"]) == (120, False)
    assert len(created["temporaryAccessPass"]) == 12
    assert created["startDateTime"] == created["createdDateTime"] == "2026-11-23T09:00:00Z"


@pytest.mark.parametrize("lifetime", [5, 9, 59, 481, 43201, "60", True])
async def test_tap_lifetime_outside_api_or_policy_bounds(world: World, lifetime: object) -> None:
    response = await world.create_tap(world.ids.ada, lifetimeInMinutes=lifetime)
    assert response.status_code == 400
    assert world.sim.tenant.taps_of(world.ids.ada) == []


async def test_tap_lifetime_bounds_follow_the_policy(world: World) -> None:
    world.sim.tenant.tap_policy.minimum_lifetime_in_minutes = 10
    world.sim.tenant.tap_policy.maximum_lifetime_in_minutes = 43200
    assert (await world.create_tap(world.ids.ada, lifetimeInMinutes=10)).status_code == 201
    assert (await world.create_tap(world.ids.ada, lifetimeInMinutes=43200)).status_code == 201


async def test_one_time_policy_refuses_multi_use_passes(world: World) -> None:
    world.sim.tenant.tap_policy.is_usable_once = True
    refused = await world.create_tap(world.ids.ada, isUsableOnce=False)
    defaulted = await world.create_tap(world.ids.ada)
    assert refused.status_code == 400 and "isUsableOnce" in message_of(refused)
    assert defaulted.status_code == 201 and defaulted.json()["isUsableOnce"] is True


async def test_tap_policy_disabled(world: World) -> None:
    world.sim.tenant.tap_policy.state = "disabled"
    response = await world.create_tap(world.ids.ada)
    assert response.status_code == 400 and message_of(response).startswith(CONVERGED)
    assert "AuthMethodType [TemporaryAccessPass]" in message_of(response)


async def test_tap_policy_scope_include_and_exclude(world: World) -> None:
    policy = world.sim.tenant.tap_policy
    policy.include_targets = [world.ids.platform]  # Ada is in it through Engineering
    assert (await world.create_tap(world.ids.ada)).status_code == 201
    outside = await world.create_tap(world.ids.bob)
    assert outside.status_code == 400 and message_of(outside).startswith(CONVERGED)

    policy.include_targets = ["all_users"]
    policy.exclude_targets = [world.ids.engineering]
    excluded = await world.create_tap(world.ids.ada)
    assert excluded.status_code == 400
    assert [t["methodUsabilityReason"] for t in await world.taps(world.ids.ada)] == ["DisabledByPolicy"]


async def test_tap_refused_for_external_guests_but_not_internal_ones(world: World) -> None:
    guest = await world.create_tap(world.ids.guest)
    assert guest.status_code == 400
    assert message_of(guest) == "Temporary Access Pass cannot be added to an external guest user."
    assert (await world.create_tap(world.ids.internal_guest)).status_code == 201


async def test_a_new_tap_replaces_the_old_one(world: World) -> None:
    first = (await world.create_tap(world.ids.ada)).json()
    second = (await world.create_tap(world.ids.ada)).json()
    assert [t["id"] for t in await world.taps(world.ids.ada)] == [second["id"]]
    history = world.sim.tenant.taps_of(world.ids.ada)
    assert [(t.id, t.deleted) for t in history] == [(first["id"], True), (second["id"], False)]
    assert first["temporaryAccessPass"] != second["temporaryAccessPass"]


async def test_tap_usability_follows_the_clock(world: World) -> None:
    start = world.clock.now() + timedelta(hours=1)
    created = await world.create_tap(world.ids.ada, startDateTime=start.isoformat(), lifetimeInMinutes=60)
    assert (created.json()["isUsable"], created.json()["methodUsabilityReason"]) == (False, "NotYetValid")
    world.clock.advance(timedelta(hours=1))
    assert [t["methodUsabilityReason"] for t in await world.taps(world.ids.ada)] == ["EnabledByPolicy"]
    world.clock.advance(timedelta(minutes=60))
    assert [(t["isUsable"], t["methodUsabilityReason"]) for t in await world.taps(world.ids.ada)] == [
        (False, "Expired")
    ]


async def test_tap_request_validation(world: World) -> None:
    unknown = await world.create_tap(world.ids.ada, lifetime=60)
    past = await world.create_tap(world.ids.ada, startDateTime="2020-01-01T00:00:00Z")
    garbled = await world.create_tap(world.ids.ada, startDateTime="tomorrow")
    assert [r.status_code for r in (unknown, past, garbled)] == [400, 400, 400]
    assert "does not exist on type" in message_of(unknown)


async def test_one_time_tap_is_consumed_by_use(world: World) -> None:
    created = (await world.create_tap(world.ids.ada, isUsableOnce=True)).json()
    tenant = world.sim.tenant
    assert tenant.use_tap(world.ids.ada, "wrong") is False
    assert tenant.use_tap(world.ids.ada, created["temporaryAccessPass"]) is True
    assert tenant.use_tap(world.ids.ada, created["temporaryAccessPass"]) is False
    assert [t["methodUsabilityReason"] for t in await world.taps(world.ids.ada)] == ["OneTimeUsed"]


# -- deleting methods and revoking sessions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "attr"),
    [
        ("fido2Methods", "ada_fido2"),
        ("microsoftAuthenticatorMethods", "ada_authenticator"),
        ("windowsHelloForBusinessMethods", "ada_windows_hello"),
        ("softwareOathMethods", "ada_software_oath"),
        ("phoneMethods", "ada_phone"),
    ],
)
async def test_delete_each_typed_method(world: World, collection: str, attr: str) -> None:
    method_id = getattr(world.ids, attr)
    url = f"/v1.0/users/{world.ids.ada}/authentication/{collection}/{method_id}"
    assert (await world.http.delete(url)).status_code == 204
    assert method_id not in [m.id for m in world.sim.tenant.methods_of(world.ids.ada)]
    gone = await world.http.delete(url)
    assert gone.status_code == 404


async def test_delete_through_the_wrong_collection_is_404(world: World) -> None:
    url = f"/v1.0/users/{world.ids.ada}/authentication/phoneMethods/{world.ids.ada_fido2}"
    assert (await world.http.delete(url)).status_code == 404
    assert world.ids.ada_fido2 in [m.id for m in world.sim.tenant.methods_of(world.ids.ada)]


async def test_mobile_phone_cannot_go_while_an_alternate_exists(world: World) -> None:
    world.sim.tenant.add_phone(world.ids.ada, "+1 206 555 0111", "alternateMobile")
    base = f"/v1.0/users/{world.ids.ada}/authentication/phoneMethods"
    assert (await world.http.delete(f"{base}/{PHONE_METHOD_IDS['mobile']}")).status_code == 400
    assert (await world.http.delete(f"{base}/{PHONE_METHOD_IDS['alternateMobile']}")).status_code == 204
    assert (await world.http.delete(f"{base}/{PHONE_METHOD_IDS['mobile']}")).status_code == 204


async def test_revocation_is_visible_on_the_user(world: World) -> None:
    world.clock.advance(timedelta(minutes=5))
    await world.http.post(f"/v1.0/users/{world.ids.ada}/revokeSignInSessions")
    user = (
        await world.http.get(f"/v1.0/users/{world.ids.ada}?$select=signInSessionsValidFromDateTime")
    ).json()
    assert user["signInSessionsValidFromDateTime"] == "2026-11-23T09:05:00Z"


# -- sendMail ------------------------------------------------------------------------------------------------------


async def test_send_mail_is_recorded(world: World) -> None:
    message = {
        "message": {
            "subject": "Your security key",
            "body": {"contentType": "Text", "content": "Ada lost her key."},
            "toRecipients": [{"emailAddress": {"address": "grace@contoso.com", "name": "Grace"}}],
        },
        "saveToSentItems": False,
    }
    response = await world.http.post("/v1.0/users/alan%40contoso.com/sendMail", json=message)
    assert response.status_code == 202 and response.content == b""
    [mail] = world.sim.tenant.sent_mail
    assert (mail.sender_id, mail.subject, mail.to_addresses, mail.save_to_sent_items) == (
        world.ids.admin,
        "Your security key",
        ["grace@contoso.com"],
        False,
    )


async def test_send_mail_refusals(world: World) -> None:
    no_recipient = await world.http.post(
        f"/v1.0/users/{world.ids.admin}/sendMail", json={"message": {"subject": "x", "toRecipients": []}}
    )
    no_message = await world.http.post(f"/v1.0/users/{world.ids.admin}/sendMail", json={})
    world.sim.tenant.users[world.ids.admin].mail = None
    no_mailbox = await world.http.post(
        f"/v1.0/users/{world.ids.admin}/sendMail",
        json={"message": {"toRecipients": [{"emailAddress": {"address": "a@b.c"}}]}},
    )
    assert [r.status_code for r in (no_recipient, no_message, no_mailbox)] == [400, 400, 404]
    assert world.sim.tenant.sent_mail == []


# -- hardware OATH (beta) ------------------------------------------------------------------------------------------


async def activate_by_serial(world: World, user_id: str, serial: str, code: str) -> httpx.Response:
    return await world.http.post(
        f"/beta/users/{user_id}/authentication/hardwareOathMethods/assignAndActivateBySerialNumber",
        json={"verificationCode": code, "serialNumber": serial, "displayName": "Token"},
    )


async def test_oath_code_is_accepted_once(world: World) -> None:
    code = world.sim.tenant.totp_now("TOTP0001")
    assert (await activate_by_serial(world, world.ids.ada, "TOTP0001", code)).status_code == 204
    device = world.sim.tenant.device_by_serial("TOTP0001")
    assert device is not None and (device.status, device.assigned_to) == (OathStatus.ACTIVATED, world.ids.ada)
    replay = await activate_by_serial(world, world.ids.ada, "TOTP0001", code)
    assert replay.status_code == 400 and message_of(replay) == "The verification code is invalid."
    world.clock.advance(30)
    assert (
        await activate_by_serial(world, world.ids.ada, "TOTP0001", world.sim.tenant.totp_now("TOTP0001"))
    ).status_code == 204


async def test_oath_tolerates_one_step_of_drift_only(world: World) -> None:
    tenant = world.sim.tenant
    late = tenant.totp_now("TOTP0001", at=world.clock.now() - timedelta(seconds=30))
    assert (await activate_by_serial(world, world.ids.ada, "TOTP0001", late)).status_code == 204
    stale = tenant.totp_now("TOTP0002", at=world.clock.now() - timedelta(seconds=90))
    assert (await activate_by_serial(world, world.ids.bob, "TOTP0002", stale)).status_code == 400


async def test_oath_errors(world: World) -> None:
    code = world.sim.tenant.totp_now("TOTP0002")
    unknown = await activate_by_serial(world, world.ids.ada, "NOPE", code)
    taken = await activate_by_serial(world, world.ids.ada, "TOTP0002", code)  # assigned to Bob
    malformed = await activate_by_serial(world, world.ids.bob, "TOTP0002", "12ab56")
    assert [(r.status_code, r.json()["error"]["code"]) for r in (unknown, taken, malformed)] == [
        (404, "itemNotFound"),
        (400, "badRequest"),
        (400, "badRequest"),
    ]
    assert "already assigned to another user" in message_of(taken)


async def test_oath_policy_disabled(world: World) -> None:
    world.sim.tenant.other_methods["HardwareOath"].state = "disabled"
    response = await activate_by_serial(
        world, world.ids.ada, "TOTP0001", world.sim.tenant.totp_now("TOTP0001")
    )
    assert response.status_code == 400 and "AuthMethodType [HardwareOath]" in message_of(response)


async def test_oath_assign_activate_deactivate_unassign(world: World) -> None:
    tenant, bob = world.sim.tenant, world.ids.bob
    base = f"/beta/users/{bob}/authentication/hardwareOathMethods"
    token = world.ids.token_assigned
    wrong = f"{(int(tenant.totp_now(token)) + 1) % 1_000_000:06d}"
    failed = await world.http.post(f"{base}/{token}/activate", json={"verificationCode": wrong})
    assert (
        failed.status_code == 400
        and tenant.hardware_oath_devices[token].status == OathStatus.FAILED_ACTIVATION
    )

    activated = await world.http.post(
        f"{base}/{token}/activate", json={"verificationCode": tenant.totp_now(token)}
    )
    assert activated.status_code == 204 and tenant.hardware_oath_devices[token].status == OathStatus.ACTIVATED
    assert (await world.http.post(f"{base}/{token}/deactivate")).status_code == 204
    assert tenant.hardware_oath_devices[token].status == OathStatus.ASSIGNED

    inventory = "/beta/directory/authenticationMethodDevices/hardwareOathDevices"
    assert (await world.http.delete(f"{inventory}/{token}")).status_code == 400  # still assigned
    assert (await world.http.delete(f"{base}/{token}")).status_code == 204
    assert tenant.hardware_oath_devices[token].assigned_to is None
    assert (await world.http.delete(f"{inventory}/{token}")).status_code == 204
    assert token not in tenant.hardware_oath_devices


async def test_oath_assign_and_activate_by_device_id_is_atomic(world: World) -> None:
    tenant, token = world.sim.tenant, world.ids.token_available
    url = f"/beta/users/{world.ids.ada}/authentication/hardwareOathMethods/assignAndActivate"
    wrong = f"{(int(tenant.totp_now(token)) + 1) % 1_000_000:06d}"
    refused = await world.http.post(url, json={"device": {"id": token}, "verificationCode": wrong})
    assert refused.status_code == 400 and tenant.hardware_oath_devices[token].assigned_to is None
    body = {"device": {"id": token}, "verificationCode": tenant.totp_now(token), "displayName": "Spare"}
    assert (await world.http.post(url, json=body)).status_code == 204
    device = tenant.hardware_oath_devices[token]
    assert (device.assigned_to, device.status, device.display_name) == (
        world.ids.ada,
        OathStatus.ACTIVATED,
        "Spare",
    )


async def test_oath_inventory_create_validation(world: World) -> None:
    url = "/beta/directory/authenticationMethodDevices/hardwareOathDevices"
    base = {
        "manufacturer": "Contoso",
        "model": "T1",
        "secretKey": "JBSWY3DPEHPK3PXP",
        "timeIntervalInSeconds": 30,
    }
    duplicate = await world.http.post(url, json={**base, "serialNumber": "TOTP0001"})
    bad_interval = await world.http.post(
        url, json={**base, "serialNumber": "N1", "timeIntervalInSeconds": 45}
    )
    bad_secret = await world.http.post(url, json={**base, "serialNumber": "N2", "secretKey": "not base32!"})
    assigned = await world.http.post(
        url, json={**base, "serialNumber": "N3", "assignTo": {"id": world.ids.bob}}
    )
    assert [r.status_code for r in (duplicate, bad_interval, bad_secret, assigned)] == [400, 400, 400, 201]
    assert assigned.json()["status"] == "assigned" and assigned.json()["assignedTo"]["id"] == world.ids.bob
    assert assigned.json()["secretKey"] is None


# -- what the user does in the browser ------------------------------------------------------------------------


def test_registration_needs_a_usable_tap_or_another_method(clock: FrozenClock) -> None:
    sim = GraphSimulator(clock)
    ids = seed_sample(sim.tenant)
    tenant = sim.tenant
    with pytest.raises(RegistrationRefused):
        tenant.register_fido2_as_user(ids.ceo, "Key", SOLO_AAGUID, "Solo")
    tenant.issue_tap(ids.ceo, lifetime=60, usable_once=True)
    method_id = tenant.register_fido2_as_user(ids.ceo, "Key", SOLO_AAGUID, "Solo")
    assert [m.id for m in tenant.methods_of(ids.ceo) if m.kind == MethodKind.FIDO2] == [method_id]
    tap = tenant.current_tap(ids.ceo)
    assert tap is not None and tenant.tap_usability(tap) == (False, TapUsability.ONE_TIME_USED)
    # Ada has Authenticator and friends: no TAP needed
    tenant.register_fido2_as_user(ids.ada, "Second key", SOLO_AAGUID, "Solo")


def test_registration_expired_tap_is_not_enough(clock: FrozenClock) -> None:
    sim = GraphSimulator(clock)
    ids = seed_sample(sim.tenant)
    sim.tenant.issue_tap(ids.ceo, lifetime=60)
    clock.advance(timedelta(minutes=61))
    with pytest.raises(RegistrationRefused):
        sim.tenant.register_fido2_as_user(ids.ceo, "Key", SOLO_AAGUID, "Solo")


@pytest.mark.parametrize(
    ("change", "user_attr"),
    [
        (lambda t, ids: setattr(t.fido2_policy, "state", "disabled"), "ada"),
        (lambda t, ids: setattr(t.fido2_policy, "is_self_service_registration_allowed", False), "ada"),
        (lambda t, ids: setattr(t.fido2_policy, "include_targets", [ids.helpdesk]), "ada"),
        (lambda t, ids: setattr(t.fido2_policy, "exclude_targets", [ids.engineering]), "ada"),
        (
            lambda t, ids: setattr(
                t.fido2_policy, "key_restrictions", KeyRestrictions(True, "allow", [YUBIKEY_5_NFC_AAGUID])
            ),
            "ada",
        ),
        (
            lambda t, ids: setattr(
                t.fido2_policy, "key_restrictions", KeyRestrictions(True, "block", [SOLO_AAGUID])
            ),
            "ada",
        ),
        (lambda t, ids: t.issue_tap(ids.internal_guest), "guest"),
    ],
)
def test_registration_follows_the_fido2_policy(clock: FrozenClock, change: Any, user_attr: str) -> None:
    sim = GraphSimulator(clock)
    ids = seed_sample(sim.tenant)
    change(sim.tenant, ids)
    with pytest.raises(RegistrationRefused):
        sim.tenant.register_fido2_as_user(getattr(ids, user_attr), "Key", SOLO_AAGUID, "Solo")


def test_seeding_guards(clock: FrozenClock) -> None:
    sim = GraphSimulator(clock)
    ids = seed_sample(sim.tenant)
    tenant = sim.tenant
    with pytest.raises(ValueError, match="already exists"):
        tenant.add_user("Ada Again", "ADA@contoso.com")
    with pytest.raises(ValueError, match="cannot contain groups"):
        tenant.add_member(ids.admins, ids.engineering)
    with pytest.raises(ValueError, match="role-assignable"):
        tenant.assign_role(ids.engineering, "62e90394-69f5-4237-9190-012177145e10")
    with pytest.raises(ValueError, match="already has a mobile"):
        tenant.add_phone(ids.ada)


def test_nested_group_cycles_terminate(clock: FrozenClock) -> None:
    sim = GraphSimulator(clock)
    t = sim.tenant
    user = t.add_user("Cy Cle", "cy@contoso.com")
    a = t.add_group("A", members=[user.id])
    b = t.add_group("B", members=[a.id])
    t.add_member(a.id, b.id)
    assert {g.id for g in t.transitive_groups(user.id)} == {a.id, b.id}


# -- RFC 6238 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "hash_function", "epoch", "expected"),
    [
        (b"12345678901234567890", "hmacsha1", 59, "287082"),
        (b"12345678901234567890", "hmacsha1", 1111111109, "081804"),
        (b"12345678901234567890", "hmacsha1", 1234567890, "005924"),
        (b"12345678901234567890123456789012", "hmacsha256", 59, "119246"),
        (b"12345678901234567890123456789012", "hmacsha256", 2000000000, "698825"),
    ],
)
def test_totp_rfc6238_vectors(secret: bytes, hash_function: str, epoch: int, expected: str) -> None:
    at = datetime.fromtimestamp(epoch, UTC)
    assert totp(base64.b32encode(secret).decode(), at, 30, hash_function) == expected


def test_hotp_rfc4226_vectors() -> None:
    key = b"12345678901234567890"
    assert [hotp(key, c) for c in range(3)] == ["755224", "287082", "359152"]
