"""Fidelity: every entity the Graph simulator serves uses only what Microsoft's published schema defines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from graph_schema import assert_matches_schema, load_schema, schema_errors

from agent.keys.secret import Pin
from agent.provision import provision
from agent.softkey import SoftAuthenticator, SoftCtapDevice, root_certificate_pem, soft_key_model
from bot.clock import FrozenClock
from bot.sandbox.graph_sim import GraphSimulator
from bot.sandbox.graph_sim.sample import SampleIds, seed_sample
from bot.sandbox.graph_sim.user_props import USER_COLLECTION_PROPERTIES, USER_PROPERTIES

COLLECTION_KEYS = {"@odata.context", "value", "@odata.nextLink", "@odata.count"}
TYPED_COLLECTIONS = {
    "fido2Methods": "fido2AuthenticationMethod",
    "microsoftAuthenticatorMethods": "microsoftAuthenticatorAuthenticationMethod",
    "phoneMethods": "phoneAuthenticationMethod",
    "windowsHelloForBusinessMethods": "windowsHelloForBusinessAuthenticationMethod",
    "softwareOathMethods": "softwareOathAuthenticationMethod",
    "temporaryAccessPassMethods": "temporaryAccessPassAuthenticationMethod",
    "passwordMethods": "passwordAuthenticationMethod",
    "emailMethods": "emailAuthenticationMethod",
}
# Routes that return no entity (204/202 actions and deletes) are covered by behaviour tests instead.
NO_ENTITY_ROUTES = {
    "DELETE /users/{user}/authentication/{kind}/{method}",
    "DELETE /directory/authenticationMethodDevices/hardwareOathDevices/{device}",
    "POST /users/{user}/sendMail",
    "POST /users/{user}/authentication/hardwareOathMethods/assignAndActivate",
    "POST /users/{user}/authentication/hardwareOathMethods/assignAndActivateBySerialNumber",
    "POST /users/{user}/authentication/hardwareOathMethods/{method}/activate",
    "POST /users/{user}/authentication/hardwareOathMethods/{method}/deactivate",
    "PATCH /users/{user}/authentication/methods/{method}",
}


@dataclass
class World:
    sim: GraphSimulator
    ids: SampleIds
    http: httpx.AsyncClient


@pytest.fixture
async def world(clock: FrozenClock) -> AsyncIterator[World]:
    sim = GraphSimulator(clock)
    ids = seed_sample(sim.tenant)
    await sim.start()
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with httpx.AsyncClient(base_url=sim.base_url, headers=headers) as http:
        yield World(sim, ids, http)
    await sim.stop()


async def get_json(world: World, url: str) -> dict[str, Any]:
    response = await world.http.get(url)
    assert response.status_code == 200, (url, response.text)
    return response.json()


async def check_collection(
    world: World, url: str, item_type: str, *, min_items: int = 1
) -> list[dict[str, Any]]:
    body = await get_json(world, url)
    assert set(body) <= COLLECTION_KEYS, (url, set(body) - COLLECTION_KEYS)
    assert len(body["value"]) >= min_items, url
    for item in body["value"]:
        assert_matches_schema(item, item_type)
    return body["value"]


async def check_entity(world: World, url: str, type_name: str) -> dict[str, Any]:
    body = await get_json(world, url)
    assert_matches_schema(body, type_name)
    return body


async def walk_reads(world: World, v: str) -> None:
    ids = world.ids
    every_user_prop = ",".join(sorted(USER_PROPERTIES))
    guest_upn = quote(world.sim.tenant.users[ids.guest].upn, safe="")
    await check_collection(world, f"/{v}/users", "user", min_items=7)
    await check_collection(world, f"/{v}/users?$select={every_user_prop}", "user", min_items=7)
    await check_collection(world, f"/{v}/users?$filter=mail eq 'ada@contoso.com'", "user")
    await check_entity(world, f"/{v}/users/{ids.ada}", "user")
    await check_entity(world, f"/{v}/users/{guest_upn}?$select={every_user_prop}", "user")
    await check_entity(world, f"/{v}/users/{ids.ada}/manager", "directoryObject")
    for who in (ids.ada, ids.admin):
        await check_collection(world, f"/{v}/users/{who}/memberOf", "directoryObject")
        await check_collection(world, f"/{v}/users/{who}/transitiveMemberOf", "directoryObject")
        await check_collection(world, f"/{v}/users/{who}/transitiveMemberOf/graph.group", "group")
        await check_collection(world, f"/{v}/users/{who}/memberOf/microsoft.graph.group", "group")
    await check_collection(
        world, f"/{v}/users/{ids.admin}/transitiveMemberOf/graph.directoryRole", "directoryRole"
    )
    await check_collection(world, f"/{v}/users/{ids.admin}/memberOf/graph.directoryRole", "directoryRole")
    role_urls = (
        f"/{v}/roleManagement/directory/roleAssignments?$expand=roleDefinition",
        f"/{v}/roleManagement/directory/roleAssignments?$filter=principalId eq '{ids.admin}'&$expand=principal",
    )
    for url in role_urls:
        await check_collection(world, url, "unifiedRoleAssignment")
    await check_collection(
        world,
        f"/{v}/roleManagement/directory/roleEligibilityScheduleInstances?$expand=roleDefinition,principal",
        "unifiedRoleEligibilityScheduleInstance",
    )
    await walk_methods(world, v)
    await walk_policy(world, v)
    world.sim.tenant.set_user_risk(ids.ada, "atRisk", "medium", detail="hidden")
    await check_entity(world, f"/{v}/identityProtection/riskyUsers/{ids.ada}", "riskyUser")


async def walk_methods(world: World, v: str) -> None:
    ids = world.ids
    for who in (ids.ada, ids.bob, ids.guest):
        items = await check_collection(
            world, f"/{v}/users/{who}/authentication/methods", "authenticationMethod"
        )
        for item in items:
            await check_entity(
                world, f"/{v}/users/{who}/authentication/methods/{item['id']}", "authenticationMethod"
            )
    for name, type_name in TYPED_COLLECTIONS.items():
        who = ids.bob if name == "temporaryAccessPassMethods" else ids.ada
        minimum = 0 if name == "emailMethods" else 1
        items = await check_collection(
            world, f"/{v}/users/{who}/authentication/{name}", type_name, min_items=minimum
        )
        for item in items:
            await check_entity(world, f"/{v}/users/{who}/authentication/{name}/{item['id']}", type_name)


async def walk_policy(world: World, v: str) -> None:
    base = f"/{v}/policies/authenticationMethodsPolicy"
    await check_entity(world, base, "authenticationMethodsPolicy")
    await check_entity(
        world, f"{base}?$expand=authenticationMethodConfigurations", "authenticationMethodsPolicy"
    )
    configs = await check_collection(
        world, f"{base}/authenticationMethodConfigurations", "authenticationMethodConfiguration"
    )
    for config in configs:
        await check_entity(
            world,
            f"{base}/authenticationMethodConfigurations/{config['id']}",
            "authenticationMethodConfiguration",
        )
    fido2 = await check_entity(
        world,
        f"{base}/authenticationMethodConfigurations/Fido2?$expand=passkeyProfiles",
        "authenticationMethodConfiguration",
    )
    assert fido2["passkeyProfiles"], "the expanded passkey profiles must be validated too"


async def walk_beta_only(world: World) -> None:
    ids = world.ids
    devices = "/beta/directory/authenticationMethodDevices/hardwareOathDevices"
    items = await check_collection(world, devices, "hardwareOathTokenAuthenticationMethodDevice", min_items=3)
    await check_collection(
        world, f"{devices}?$filter=serialNumber eq 'TOTP0003'", "hardwareOathTokenAuthenticationMethodDevice"
    )
    for item in items:
        await check_entity(world, f"{devices}/{item['id']}", "hardwareOathTokenAuthenticationMethodDevice")
    methods = await check_collection(
        world, f"/beta/users/{ids.ada}/authentication/hardwareOathMethods", "hardwareOathAuthenticationMethod"
    )
    await check_entity(
        world,
        f"/beta/users/{ids.ada}/authentication/hardwareOathMethods/{methods[0]['id']}",
        "hardwareOathAuthenticationMethod",
    )
    await check_collection(
        world,
        f"/beta/roleManagement/directory/transitiveRoleAssignments?$filter=principalId eq '{ids.admin}'&$expand=roleDefinition",
        "unifiedRoleAssignment",
        min_items=2,
    )


async def walk_writes(world: World, v: str) -> None:
    """Write responses that carry entities (and the action results Graph documents)."""
    ids, http = world.ids, world.http
    created = await http.post(f"/{v}/users/{ids.ada}/authentication/temporaryAccessPassMethods", json={})
    assert created.status_code == 201
    assert_matches_schema(created.json(), "temporaryAccessPassAuthenticationMethod")
    revoked = await http.post(f"/{v}/users/{ids.ada}/revokeSignInSessions")
    assert revoked.json() == {
        "@odata.context": f"{world.sim.base_url}/{v}/$metadata#Edm.Boolean",
        "value": True,
    }
    checked = await http.post(f"/{v}/users/{ids.ada}/checkMemberGroups", json={"groupIds": [ids.platform]})
    assert checked.json()["value"] == [ids.platform]
    await walk_passkey_provisioning(world, v)


async def walk_passkey_provisioning(world: World, v: str) -> None:
    """creationOptions (every form the version accepts) and a registration made by the soft key."""
    fido2 = f"/{v}/users/{world.ids.bob}/authentication/fido2Methods"
    forms = ["creationOptions()", "creationOptions"]
    if v == "beta":
        forms += [
            "creationOptions(challengeTimeoutInMinutes=60)",
            "creationOptions?challengeTimeoutInMinutes=60",
        ]
    for form in forms:
        answer = await get_json(world, f"{fido2}/{form}")
        options = answer["value"] if v == "beta" else answer  # beta: wrapped, as its documentation shows
        assert_matches_schema(options, "webauthnCredentialCreationOptions")
    device = SoftCtapDevice(SoftAuthenticator())
    world.sim.tenant.trust_key_model(soft_key_model().aaguid, "keydesk soft key", root_certificate_pem())
    made = provision(device, options, Pin("48291537"), now=world.sim.clock.now)
    created = await world.http.post(
        fido2, json={"displayName": "Desk key", "publicKeyCredential": made.public_key_credential()}
    )
    assert created.status_code == 201, created.text
    assert_matches_schema(created.json(), "fido2AuthenticationMethod")


async def walk_beta_writes(world: World) -> None:
    ids, http = world.ids, world.http
    device = {
        "serialNumber": "TOTP0099",
        "manufacturer": "Contoso",
        "model": "Hardware Token 1000",
        "secretKey": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "timeIntervalInSeconds": 30,
        "hashFunction": "hmacsha1",
    }
    created = await http.post("/beta/directory/authenticationMethodDevices/hardwareOathDevices", json=device)
    assert created.status_code == 201
    assert_matches_schema(created.json(), "hardwareOathTokenAuthenticationMethodDevice")
    assigned = await http.post(
        f"/beta/users/{ids.bob}/authentication/hardwareOathMethods",
        json={"device": {"id": created.json()["id"]}},
    )
    assert assigned.status_code == 201
    assert_matches_schema(assigned.json(), "hardwareOathAuthenticationMethod")


async def test_every_route_serves_schema_conformant_entities(world: World) -> None:
    for version in ("v1.0", "beta"):
        await walk_reads(world, version)
        await walk_writes(world, version)
    await walk_beta_only(world)
    await walk_beta_writes(world)

    assert world.sim.internal_errors == []
    served = {r.route for r in world.sim.requests}
    every_route = {f"{r.method} {r.template}" for r in world.sim._router.routes}
    assert every_route - NO_ENTITY_ROUTES - served == set(), "a route was added without schema coverage"


async def test_tap_value_is_only_in_the_creation_response(world: World) -> None:
    created = await world.http.post(
        f"/v1.0/users/{world.ids.ada}/authentication/temporaryAccessPassMethods", json={}
    )
    listed = await get_json(world, f"/v1.0/users/{world.ids.ada}/authentication/temporaryAccessPassMethods")
    assert created.json()["temporaryAccessPass"] == world.sim.tenant.taps_of(world.ids.ada)[-1].value
    assert [item["temporaryAccessPass"] for item in listed["value"]] == [None]


def test_user_property_list_matches_the_csdl() -> None:
    props = load_schema().properties("user")
    data_props = {name for name, p in props.items() if not p.navigation}
    collections = {name for name in data_props if props[name].type.startswith("Collection(")}
    assert data_props == USER_PROPERTIES
    assert collections == USER_COLLECTION_PROPERTIES


@pytest.mark.parametrize(
    ("entity", "type_name", "complaint"),
    [
        ({"id": "1", "mobile": "x"}, "user", "has no property 'mobile'"),
        ({"id": "1", "accountEnabled": "true"}, "user", "not a valid Edm.Boolean"),
        ({"id": "1", "businessPhones": None}, "user", "null is not allowed"),
        ({"@odata.type": "#microsoft.graph.group", "id": "1"}, "authenticationMethod", "does not derive"),
        ({"id": "1"}, "authenticationMethod", "abstract"),
        (
            {"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "1", "phoneType": "pager"},
            "authenticationMethod",
            "not in",
        ),
        (
            {
                "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
                "id": "1",
                "createdDateTime": "yesterday",
            },
            "authenticationMethod",
            "DateTimeOffset",
        ),
        (
            {
                "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
                "id": "1",
                "lastUsedDateTime": None,
            },
            "authenticationMethod",
            "no property 'lastUsedDateTime'",
        ),
        (
            {"@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethod", "id": "1", "serial": "x"},
            "authenticationMethod",
            "no property 'serial'",
        ),
        (
            {"id": "1", "device": {"id": "d", "owner": "x"}},
            "hardwareOathAuthenticationMethod",
            "no property 'owner'",
        ),
        ({"id": "x", "value@odata.context": "y"}, "user", "unexpected property annotation"),
    ],
)
def test_schema_check_rejects_what_graph_would_not_send(
    entity: dict[str, Any], type_name: str, complaint: str
) -> None:
    problems = schema_errors(entity, type_name)
    assert any(complaint in p for p in problems), problems
    with pytest.raises(AssertionError):
        assert_matches_schema(entity, type_name)
