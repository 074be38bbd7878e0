"""Graph simulator, protocol level: auth, error envelopes, routing, OData query options, faults."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.clock import FrozenClock
from bot.sandbox.graph_sim import Fault, GraphSimulator
from bot.sandbox.graph_sim.sample import SampleIds, seed_sample


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
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": "Bearer sim-graph-token"}
    ) as http:
        yield World(sim, ids, http)
    assert sim.internal_errors == []
    await sim.stop()


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "innerError"}
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    return body["error"]


async def test_requests_without_the_token_are_refused(world: World) -> None:
    missing = await world.http.get(f"/v1.0/users/{world.ids.ada}", headers={"Authorization": ""})
    wrong = await world.http.get(f"/v1.0/users/{world.ids.ada}", headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, error_of(missing)["code"]) == (401, "InvalidAuthenticationToken")
    assert (wrong.status_code, error_of(wrong)["code"]) == (401, "InvalidAuthenticationToken")
    assert [r.status for r in world.sim.requests] == [401, 401]


async def test_unauthenticated_requests_use_up_no_fault(world: World) -> None:
    world.sim.add_fault(Fault(status=503))
    refused = await world.http.get(f"/v1.0/users/{world.ids.ada}", headers={"Authorization": ""})
    failed = await world.http.get(f"/v1.0/users/{world.ids.ada}")
    assert [refused.status_code, failed.status_code] == [401, 503]


async def test_error_envelope_echoes_client_request_id(world: World) -> None:
    response = await world.http.get(
        "/v1.0/users/nobody@contoso.com", headers={"client-request-id": "abc-123"}
    )
    error = error_of(response)
    assert response.status_code == 404 and error["code"] == "Request_ResourceNotFound"
    assert error["innerError"]["client-request-id"] == "abc-123"
    assert error["innerError"]["date"] == "2026-11-23T09:00:00"  # the simulator's clock
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "url", "status", "code"),
    [
        ("GET", "/v1.0/widgets", 400, "BadRequest"),
        ("GET", "/v1.0/users/{ada}/widgets", 400, "BadRequest"),
        ("GET", "/users/{ada}", 400, "BadRequest"),
        ("GET", "/v1.0/me", 400, "BadRequest"),
        ("GET", "/v1.0/users/{ada}/authentication/hardwareOathMethods", 400, "BadRequest"),
        ("GET", "/v1.0/directory/authenticationMethodDevices/hardwareOathDevices", 400, "BadRequest"),
        ("DELETE", "/v1.0/users/{ada}/authentication/methods/{fido2}", 405, "Request_BadRequest"),
        (
            "DELETE",
            "/v1.0/users/{ada}/authentication/passwordMethods/28c10230-6103-485e-b985-444c60001490",
            405,
            "Request_BadRequest",
        ),
        # POST fido2Methods is served now (provisioning on behalf); Windows Hello cannot be created.
        (
            "POST",
            "/v1.0/users/{ada}/authentication/windowsHelloForBusinessMethods",
            405,
            "Request_BadRequest",
        ),
        ("DELETE", "/v1.0/users/{ada}", 405, "Request_BadRequest"),
        ("GET", "/v1.0/users/{ada}/authentication/fido2Methods/nope", 404, "itemNotFound"),
        (
            "GET",
            "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Nope",
            404,
            "Request_ResourceNotFound",
        ),
    ],
)
async def test_routes_graph_does_not_serve(
    world: World, method: str, url: str, status: int, code: str
) -> None:
    response = await world.http.request(method, url.format(ada=world.ids.ada, fido2=world.ids.ada_fido2))
    assert (response.status_code, error_of(response)["code"]) == (status, code)


async def test_paths_are_normalised_like_graph_accepts_them(world: World) -> None:
    guest_upn = world.sim.tenant.users[world.ids.guest].upn
    encoded = guest_upn.replace("#", "%23").replace("@", "%40")
    for url in (
        f"/v1.0//users/{encoded}",
        f"/v1.0/users/{guest_upn.upper().replace('#', '%23')}",
        f"/beta/users/{world.ids.guest}/",
    ):
        response = await world.http.get(url)
        assert response.status_code == 200, url
        assert response.json()["id"] == world.ids.guest
    assert world.sim.requests[0].path == f"/users/{guest_upn}"
    assert [r.version for r in world.sim.requests] == ["v1.0", "v1.0", "beta"]


async def test_casts_in_either_namespace_form(world: World) -> None:
    for cast in ("graph.group", "microsoft.graph.group"):
        response = await world.http.get(f"/v1.0/users/{world.ids.ada}/transitiveMemberOf/{cast}")
        assert {g["displayName"] for g in response.json()["value"]} == {"Engineering", "Platform"}
    direct = await world.http.get(f"/v1.0/users/{world.ids.ada}/memberOf")
    assert [g["displayName"] for g in direct.json()["value"]] == ["Engineering"]


async def test_select_semantics(world: World) -> None:
    default = (await world.http.get(f"/v1.0/users/{world.ids.ada}")).json()
    assert (
        "accountEnabled" not in default and "userType" not in default and default["mail"] == "ada@contoso.com"
    )

    chosen = (await world.http.get(f"/v1.0/users/{world.ids.ada}?$select=ACCOUNTENABLED,userType")).json()
    assert {k: v for k, v in chosen.items() if not k.startswith("@")} == {
        "accountEnabled": True,
        "userType": "Member",
    }

    bad = await world.http.get(f"/v1.0/users/{world.ids.ada}?$select=accountEnabledd")
    assert (bad.status_code, error_of(bad)["code"]) == (400, "Request_BadRequest")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("mail eq 'ADA@contoso.com'", ["ada@contoso.com"]),
        (
            "mail eq 'ada@contoso.com' or userPrincipalName eq 'bob@contoso.com'",
            ["ada@contoso.com", "bob@contoso.com"],
        ),
        ("startswith(displayName,'Ad')", ["ada@contoso.com"]),
        ("accountEnabled eq false", ["dan@contoso.com"]),
        ("(userType eq 'Guest') and (mail eq 'ivy@contoso.com')", ["ivy@contoso.com"]),
        ("mail eq 'o''brien@contoso.com'", []),
    ],
)
async def test_filter_supported_clauses(world: World, expression: str, expected: list[str]) -> None:
    response = await world.http.get("/v1.0/users", params={"$filter": expression, "$select": "mail"})
    assert sorted(u["mail"] for u in response.json()["value"]) == expected


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("mail ne 'x'", "Request_UnsupportedQuery"),
        ("endswith(mail,'@contoso.com')", "Request_UnsupportedQuery"),
        ("proxyAddresses/any(p:p eq 'smtp:x')", "Request_UnsupportedQuery"),
        ("favouriteColour eq 'red'", "Request_UnsupportedQuery"),
        ("mail eq", "BadRequest"),
        ("mail eq 'x' or", "BadRequest"),
        ("mail eq 'x", "BadRequest"),
    ],
)
async def test_filter_unsupported_or_malformed(world: World, expression: str, code: str) -> None:
    response = await world.http.get("/v1.0/users", params={"$filter": expression})
    assert (response.status_code, error_of(response)["code"]) == (400, code)


async def test_paging_follows_next_links(world: World) -> None:
    world.sim.page_size = 3
    seen: list[str] = []
    url: str | None = "/v1.0/users?$select=id"
    pages = 0
    while url:
        body = (await world.http.get(url)).json()
        seen += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3 and sorted(seen) == sorted(world.sim.tenant.users)
    top = (await world.http.get("/v1.0/users?$top=5")).json()
    assert len(top["value"]) == 5 and "$skiptoken" in top["@odata.nextLink"]


async def test_count_needs_consistency_level(world: World) -> None:
    refused = await world.http.get("/v1.0/users?$count=true")
    assert refused.status_code == 400
    counted = await world.http.get("/v1.0/users?$count=true", headers={"ConsistencyLevel": "eventual"})
    assert counted.json()["@odata.count"] == len(world.sim.tenant.users)


async def test_check_member_groups_limit(world: World) -> None:
    ids = [world.ids.platform] * 21
    response = await world.http.post(f"/v1.0/users/{world.ids.ada}/checkMemberGroups", json={"groupIds": ids})
    assert response.status_code == 400


async def test_invalid_json_body(world: World) -> None:
    response = await world.http.post(
        f"/v1.0/users/{world.ids.ada}/authentication/temporaryAccessPassMethods",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, error_of(response)["code"]) == (400, "BadRequest")
    assert world.sim.tenant.taps_of(world.ids.ada) == []


async def test_role_assignment_filters(world: World) -> None:
    base = "/v1.0/roleManagement/directory"
    direct = (
        await world.http.get(f"{base}/roleAssignments?$filter=principalId eq '{world.ids.admin}'")
    ).json()
    assert [a["principalId"] for a in direct["value"]] == [
        world.ids.admin
    ]  # the group-held role is not direct
    eligible = (
        await world.http.get(
            f"{base}/roleEligibilityScheduleInstances?$filter=principalId eq '{world.ids.bob}'"
        )
    ).json()
    assert [a["roleDefinitionId"] for a in eligible["value"]] == ["c4e39bd9-1100-46d3-8c65-fb160da0071f"]
    transitive = (
        await world.http.get(
            f"/beta/roleManagement/directory/transitiveRoleAssignments?$filter=principalId eq '{world.ids.admin}'"
        )
    ).json()
    assert {a["principalId"] for a in transitive["value"]} == {world.ids.admin, world.ids.admins}


# -- faults ----------------------------------------------------------------------------------------------------


async def test_fault_counts_method_filter_and_retry_after(world: World) -> None:
    world.sim.add_fault(Fault(method="GET", path=r"^/users/[^/]+$", status=429, retry_after=0.05, times=2))
    url = f"/v1.0/users/{world.ids.ada}"
    posted = await world.http.post(f"/v1.0/users/{world.ids.ada}/revokeSignInSessions")
    first, second, third = [await world.http.get(url) for _ in range(3)]
    assert posted.status_code == 200
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["Retry-After"] == "0.05"
    assert error_of(first)["code"] == "TooManyRequests"
    assert world.sim.pending_faults == []


async def test_default_429_carries_a_whole_second_retry_after(world: World) -> None:
    world.sim.add_fault(Fault())
    response = await world.http.get(f"/v1.0/users/{world.ids.ada}")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")


async def test_persistent_server_error_with_custom_code(world: World) -> None:
    world.sim.add_fault(
        Fault(path="/temporaryAccessPassMethods", status=503, code="serviceNotAvailable", times=0)
    )
    url = f"/v1.0/users/{world.ids.ada}/authentication/temporaryAccessPassMethods"
    for _ in range(3):
        response = await world.http.post(url, json={})
        assert (response.status_code, error_of(response)["code"]) == (503, "serviceNotAvailable")
        assert "Retry-After" not in response.headers
    assert world.sim.tenant.taps_of(world.ids.ada) == []
    world.sim.clear_faults()
    assert (await world.http.post(url, json={})).status_code == 201


async def test_drop_before_commit_does_nothing(world: World) -> None:
    world.sim.add_fault(Fault(method="POST", path="/temporaryAccessPassMethods$", drop_before_commit=True))
    with pytest.raises(httpx.RemoteProtocolError):
        await world.http.post(
            f"/v1.0/users/{world.ids.ada}/authentication/temporaryAccessPassMethods", json={}
        )
    assert world.sim.tenant.taps_of(world.ids.ada) == []
    assert world.sim.requests[-1].dropped


async def test_drop_after_commit_did_the_work(world: World) -> None:
    world.sim.add_fault(Fault(method="POST", path="/temporaryAccessPassMethods$", drop_after_commit=True))
    with pytest.raises(httpx.RemoteProtocolError):
        await world.http.post(
            f"/v1.0/users/{world.ids.ada}/authentication/temporaryAccessPassMethods", json={}
        )
    assert len(world.sim.tenant.taps_of(world.ids.ada)) == 1
    assert world.sim.requests_to("POST", "temporaryAccessPassMethods")[-1].status == 201


async def test_global_latency(world: World) -> None:
    world.sim.set_latency(0.2)
    started = time.monotonic()
    await world.http.get(f"/v1.0/users/{world.ids.ada}")
    assert time.monotonic() - started >= 0.2


async def test_requests_to_and_recorded_bodies(world: World) -> None:
    await world.http.post(
        f"/v1.0/users/{world.ids.ada}/authentication/temporaryAccessPassMethods", json={"isUsableOnce": True}
    )
    await world.http.get(f"/beta/users/{world.ids.ada}/authentication/temporaryAccessPassMethods")
    posts = world.sim.requests_to("post", r"/authentication/temporaryAccessPassMethods$")
    assert [(r.json, r.status, r.route) for r in posts] == [
        ({"isUsableOnce": True}, 201, "POST /users/{user}/authentication/temporaryAccessPassMethods")
    ]
    assert len(world.sim.requests_to("GET", "temporaryAccessPassMethods", version="beta")) == 1
    assert world.sim.requests_to("GET", "temporaryAccessPassMethods", version="v1.0") == []
