"""CPU and wall time per Entra gateway call, against the Graph simulator, with two references.

    python bench/graph_calls.py [--calls 200] [--rounds 4]

For every hot operation, three ways of making the same HTTP requests are timed over N sequential
calls each, interleaved in rounds so machine noise hits all three alike:

* gateway  - `GraphDirectory` as keydesk uses it (SDK request building, adapter, auth, middleware,
             our retry loop and metrics, raw-JSON answers mapped into our values);
* sdk      - the SDK's own typed calls (`builder.get()` / `.post()`) on the same clients, which
             deserialise every answer into kiota models (what the gateway did before);
* raw      - a bare aiohttp round trip to the same URLs with the same bearer token and `json.loads`
             of the answer: the floor.

The simulator runs in a child process, so `time.process_time()` here counts only the client's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from kiota_abstractions.base_request_configuration import RequestConfiguration

from bot.config import Settings
from bot.directory import build_directory
from bot.directory.clients import GraphClients, build_clients
from bot.directory.credentials import StaticTokenCredential
from bot.directory.gateway import Directory

TOKEN = "bench-graph-token"
WARM_UP = 10
USER_FIELDS = [
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "accountEnabled",
    "userType",
    "department",
    "jobTitle",
    "createdDateTime",
    "onPremisesSyncEnabled",
]
ROLE_FIELDS = ["id", "displayName", "roleTemplateId"]
TAP_CONFIG = "TemporaryAccessPass"
Call = Callable[[], Awaitable[Any]]


# --- the simulator, in its own process ------------------------------------------------------------------


async def serve() -> None:
    """Child process: seed the sample tenant, print the URL and ids, serve until stdin closes."""
    from dataclasses import asdict

    from bot.sandbox.graph_sim import GraphSimulator, seed_sample

    sim = GraphSimulator(token=TOKEN)
    ids = seed_sample(sim.tenant)
    url = await sim.start()
    print(json.dumps({"url": url, "ids": asdict(ids)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await sim.stop()


async def start_simulator() -> tuple[asyncio.subprocess.Process, str, dict[str, str]]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    hello = json.loads(await child.stdout.readline())
    return child, hello["url"], hello["ids"]


# --- the operations, three ways -------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    method: str
    path: str  # below /v1.0, already encoded
    body: Any = None


@dataclass(frozen=True)
class Operation:
    name: str
    gateway: Callable[[Directory], Awaitable[Any]]
    sdk: Callable[[GraphClients], Awaitable[Any]]
    raw: tuple[Raw, ...]  # the HTTP requests the operation makes


def query(**params: str) -> str:
    return urlencode({f"${k}": v for k, v in params.items()}, quote_via=quote, safe=",'")


def operations(ids: dict[str, str], groups: list[str]) -> list[Operation]:
    ada, bob, admin = ids["ada"], ids["bob"], ids["admin"]
    email = "ada@contoso.com"
    match = f"mail eq '{email}' or userPrincipalName eq '{email}'"
    eligible = f"principalId eq '{admin}'"
    return [
        Operation(
            "find_users_by_email",
            lambda d: d.find_users_by_email(email),
            lambda c: sdk_find(c, match),
            (Raw("GET", f"/users?{query(filter=match, select=','.join(USER_FIELDS))}"),),
        ),
        Operation(
            "get_user",
            lambda d: d.get_user(ada),
            lambda c: sdk_get_user(c, ada),
            (Raw("GET", f"/users/{ada}?{query(select=','.join(USER_FIELDS))}"),),
        ),
        Operation(
            "list_methods",
            lambda d: d.list_methods(ada),
            lambda c: c.v1.users.by_user_id(ada).authentication.methods.get(),
            (Raw("GET", f"/users/{ada}/authentication/methods"),),
        ),
        Operation(
            "list_taps",
            lambda d: d.list_taps(bob),
            lambda c: c.v1.users.by_user_id(bob).authentication.temporary_access_pass_methods.get(),
            (Raw("GET", f"/users/{bob}/authentication/temporaryAccessPassMethods"),),
        ),
        Operation(
            "member_of_groups",
            lambda d: d.member_of_groups(ada, groups),
            lambda c: sdk_member_of(c, ada, groups),
            (Raw("POST", f"/users/{ada}/checkMemberGroups", {"groupIds": groups}),),
        ),
        Operation(
            "directory_roles",
            lambda d: d.directory_roles(admin),
            lambda c: sdk_roles(c, admin, eligible),
            (
                Raw(
                    "GET",
                    f"/users/{admin}/transitiveMemberOf/graph.directoryRole?"
                    f"{query(select=','.join(ROLE_FIELDS))}",
                ),
                Raw(
                    "GET",
                    "/roleManagement/directory/roleEligibilityScheduleInstances?"
                    f"{query(filter=eligible, expand='roleDefinition')}",
                ),
            ),
        ),
        Operation(
            "tap_policy",
            lambda d: d.tap_policy(),
            lambda c: sdk_tap_policy(c),
            (
                Raw(
                    "GET",
                    f"/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{TAP_CONFIG}",
                ),
            ),
        ),
    ]


async def sdk_find(c: GraphClients, match: str) -> Any:
    users = c.v1.users
    q = users.UsersRequestBuilderGetQueryParameters(filter=match, select=USER_FIELDS)
    return await users.get(RequestConfiguration(query_parameters=q))


async def sdk_get_user(c: GraphClients, user_id: str) -> Any:
    builder = c.v1.users.by_user_id(user_id)
    q = builder.UserItemRequestBuilderGetQueryParameters(select=USER_FIELDS)
    return await builder.get(RequestConfiguration(query_parameters=q))


async def sdk_member_of(c: GraphClients, user_id: str, groups: list[str]) -> Any:
    from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
        CheckMemberGroupsPostRequestBody,
    )

    body = CheckMemberGroupsPostRequestBody(group_ids=groups)
    return await c.v1.users.by_user_id(user_id).check_member_groups.post(body)


async def sdk_roles(c: GraphClients, user_id: str, eligible: str) -> Any:
    active = c.v1.users.by_user_id(user_id).transitive_member_of.graph_directory_role
    q1 = active.GraphDirectoryRoleRequestBuilderGetQueryParameters(select=ROLE_FIELDS)
    await active.get(RequestConfiguration(query_parameters=q1))
    instances = c.v1.role_management.directory.role_eligibility_schedule_instances
    q2 = instances.RoleEligibilityScheduleInstancesRequestBuilderGetQueryParameters(
        filter=eligible, expand=["roleDefinition"]
    )
    return await instances.get(RequestConfiguration(query_parameters=q2))


async def sdk_tap_policy(c: GraphClients) -> Any:
    configs = c.v1.policies.authentication_methods_policy.authentication_method_configurations
    return await configs.by_authentication_method_configuration_id(TAP_CONFIG).get()


async def raw_round_trips(http: aiohttp.ClientSession, v1: str, raw: tuple[Raw, ...]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    for r in raw:
        async with http.request(r.method, v1 + r.path, json=r.body, headers=headers) as response:
            body = await response.read()
            if response.status >= 300:
                raise RuntimeError(f"{r.method} {r.path}: {response.status}")
            json.loads(body)


# --- timing ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    calls: int = 0
    cpu: float = 0.0
    wall: float = 0.0

    def per_call(self) -> tuple[float, float]:
        return self.cpu * 1000 / self.calls, self.wall * 1000 / self.calls


@dataclass
class Result:
    name: str
    ways: dict[str, Tally] = field(default_factory=dict)


async def timed(calls: int, once: Call, tally: Tally) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await once()
    tally.cpu += time.process_time() - cpu
    tally.wall += time.perf_counter() - wall
    tally.calls += calls


async def measure(op: Operation, ways: dict[str, Call], calls: int, rounds: int) -> Result:
    result = Result(op.name, {name: Tally() for name in ways})
    for once in ways.values():
        for _ in range(WARM_UP):
            await once()
    per_round = max(1, calls // rounds)
    for _ in range(rounds):
        for name, once in ways.items():
            await timed(per_round, once, result.ways[name])
    return result


def preload_sdk_models() -> None:
    """The kiota model tree imports lazily (~2 s once); keep that out of the per-call figures."""
    from msgraph.generated.models.user import User

    User().get_field_deserializers()


async def main(calls: int, rounds: int) -> list[Result]:
    child, url, ids = await start_simulator()
    settings = Settings(_env_file=None, graph_url=url, graph_token=TOKEN)  # type: ignore[call-arg, arg-type]
    directory = build_directory(settings)
    clients = build_clients(url, StaticTokenCredential(TOKEN), timeout=10)
    preload_sdk_models()
    groups = [ids["engineering"], ids["platform"], ids["helpdesk"], ids["admins"]]
    results = []
    try:
        async with aiohttp.ClientSession() as http:
            for op in operations(ids, groups):
                ways: dict[str, Call] = {
                    "gateway": lambda op=op: op.gateway(directory),  # type: ignore[misc]
                    "sdk": lambda op=op: op.sdk(clients),  # type: ignore[misc]
                    "raw": lambda op=op: raw_round_trips(http, f"{url}/v1.0", op.raw),  # type: ignore[misc]
                }
                results.append(await measure(op, ways, calls, rounds))
    finally:
        await directory.close()
        await clients.aclose()
        assert child.stdin is not None
        child.stdin.close()
        await child.wait()
    return results


def report(calls: int, results: list[Result]) -> None:
    print(f"{calls} sequential calls per operation and way; mean ms per call (client process only)")
    print(f"{'':<22}{'gateway':>16}{'sdk models':>16}{'raw aiohttp':>16}")
    print(f"{'operation':<22}" + f"{'cpu':>8}{'wall':>8}" * 3)
    totals = {"gateway": 0.0, "sdk": 0.0, "raw": 0.0}
    for r in results:
        cells = ""
        for name in ("gateway", "sdk", "raw"):
            cpu, wall = r.ways[name].per_call()
            totals[name] += cpu
            cells += f"{cpu:>8.2f}{wall:>8.2f}"
        print(f"{r.name:<22}{cells}")
    print(
        f"sum of cpu per call: gateway {totals['gateway']:.1f} ms, sdk models {totals['sdk']:.1f} ms, "
        f"raw {totals['raw']:.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
    else:
        report(args.calls, asyncio.run(main(args.calls, args.rounds)))
