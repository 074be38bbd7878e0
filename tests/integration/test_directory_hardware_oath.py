"""Hardware OATH tokens in the gateway's method list (beta `hardwareOathMethods`, against the Graph
simulator): typed like every other method, asked for only when wanted, and a failing beta call never
failing the list. Plus the pure readers: Graph's documented answer, and which token counts as new."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import Settings
from bot.directory import AuthMethod, Forbidden, MethodKind, MethodList, build_directory
from bot.directory.graph import GraphDirectory
from bot.directory.mapping import page, to_hardware_oath_method, to_method
from bot.domain.guides import GuideMethod
from bot.sandbox.graph_sim import Fault, GraphSimulator, SimUser
from bot.services.registration.detect import new_method
from bot.store.models.wizard import Wizard

TOKEN = "sim-graph-token"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOKENS = r"/authentication/hardwareOathMethods$"
METHODS = r"/authentication/methods$"


@pytest.fixture
async def sim() -> AsyncIterator[GraphSimulator]:
    simulator = GraphSimulator(token=TOKEN)
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
def ada(sim: GraphSimulator) -> SimUser:
    user = sim.tenant.add_user("Ada Lovelace", "ada@contoso.com")
    sim.tenant.add_fido2(user.id, "Blue key")
    return user


def give_token(sim: GraphSimulator, user: SimUser, serial: str, name: str, *, activate: bool = True) -> str:
    tenant = sim.tenant
    device_id = tenant.add_hardware_oath_device(serial, "Token2", "C202", SECRET)
    device = tenant.hardware_oath_devices[device_id]
    if activate:
        tenant.assign_and_activate(user.id, device, tenant.totp_now(serial), name)
    else:
        tenant.assign_device(user.id, device_id)
    return device_id


# --- listing ------------------------------------------------------------------------------------------------
async def test_tokens_are_listed_from_beta_with_their_device(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    device_id = give_token(sim, ada, "TK-1", "Work token")

    methods = await directory.list_methods(ada.id)

    assert isinstance(methods, MethodList) and methods.unchecked == frozenset()
    assert {m.kind for m in methods} == {MethodKind.PASSWORD, MethodKind.FIDO2, MethodKind.HARDWARE_OATH}
    [token] = [m for m in methods if m.kind is MethodKind.HARDWARE_OATH]
    assert (token.id, token.display_name, token.model, token.detail, token.status) == (
        device_id,
        "Work token",
        "Token2 C202",
        "serial TK-1",
        "activated",
    )
    assert token.usable and token.created is not None
    [beta] = sim.requests_to("GET", TOKENS, version="beta")
    assert beta.path == f"/users/{ada.id}/authentication/hardwareOathMethods" and beta.status == 200
    assert sim.requests_to("GET", TOKENS, version="v1.0") == []  # v1.0 has no such collection
    assert [r.version for r in sim.requests_to("GET", METHODS)] == ["v1.0"]


async def test_an_assigned_token_not_yet_activated_is_listed_but_not_usable(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    give_token(sim, ada, "TK-2", "", activate=False)

    [token] = [m for m in await directory.list_methods(ada.id) if m.kind is MethodKind.HARDWARE_OATH]

    assert token.status == "assigned" and not token.usable
    assert all(
        m.usable for m in await directory.list_methods(ada.id) if m.kind is not MethodKind.HARDWARE_OATH
    )


async def test_without_tokens_no_beta_call_is_made_and_the_list_says_so(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    give_token(sim, ada, "TK-3", "Work token")

    methods = await directory.list_methods(ada.id, hardware_oath=False)

    assert MethodKind.HARDWARE_OATH not in {m.kind for m in methods}
    assert not methods.checked(MethodKind.HARDWARE_OATH) and not methods.checked("hardware_oath")
    assert methods.checked(MethodKind.FIDO2)
    assert sim.requests_to("GET", TOKENS) == []


@pytest.mark.parametrize("status", [403, 400, 404, 500])
async def test_a_failing_beta_call_loses_only_the_tokens(
    directory: GraphDirectory,
    sim: GraphSimulator,
    ada: SimUser,
    status: int,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    give_token(sim, ada, "TK-4", "Work token")
    sim.add_fault(Fault(method="GET", path=TOKENS, status=status, times=0))

    with caplog.at_level(logging.WARNING):
        methods = await directory.list_methods(ada.id)

    assert {m.kind for m in methods} == {MethodKind.PASSWORD, MethodKind.FIDO2}
    assert methods.unchecked == frozenset({MethodKind.HARDWARE_OATH})
    logged = capsys.readouterr().out + caplog.text
    assert "directory.hardware_oath_unlisted" in logged and str(status) in logged
    stats = directory.metrics.snapshot()
    assert stats["list_hardware_oath_methods"].failures >= 1 and stats["list_methods"].failures == 0


async def test_a_failing_v1_list_still_fails_the_call(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    give_token(sim, ada, "TK-5", "Work token")
    sim.add_fault(Fault(method="GET", path=METHODS, status=403))

    with pytest.raises(Forbidden):
        await directory.list_methods(ada.id)  # never a partial (fail-open) list


# --- deleting -----------------------------------------------------------------------------------------------
async def test_a_token_is_deleted_through_beta(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    device_id = give_token(sim, ada, "TK-6", "Work token")
    [token] = [m for m in await directory.list_methods(ada.id) if m.kind is MethodKind.HARDWARE_OATH]

    assert await directory.delete_method(ada.id, token) is True
    assert await directory.delete_method(ada.id, token) is False  # already gone: 404

    first, second = sim.requests_to("DELETE", r"/hardwareOathMethods/")
    assert (first.version, first.path, first.status, second.status) == (
        "beta",
        f"/users/{ada.id}/authentication/hardwareOathMethods/{device_id}",
        204,
        404,
    )
    assert sim.tenant.hardware_oath_devices[device_id].assigned_to is None  # back in the inventory
    assert MethodKind.HARDWARE_OATH not in {m.kind for m in await directory.list_methods(ada.id)}


# --- the pure readers ---------------------------------------------------------------------------------------
DOCUMENTED = {  # Microsoft's example answer for GET /beta/me/authentication/hardwareOathMethods
    "value": [
        {
            "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethod",
            "id": "aad49556-####-####-####-############",
            "device": {
                "id": "aad49556-####-####-####-############",
                "displayName": "Amy Masters Token 1",
                "serialNumber": "TOTP123456",
                "manufacturer": "Contoso",
                "model": "Hardware Token 1000",
                "secretKey": None,
                "timeIntervalInSeconds": 30,
                "status": "activated",
                "hashFunction": "hmacsha1",
                "assignedTo": {"id": "0cadbf92-####-####-####-############", "displayName": "Amy Masters"},
            },
        }
    ]
}


def test_the_documented_answer_reads_as_a_token() -> None:
    [token] = page(to_hardware_oath_method, DOCUMENTED).items
    assert token == AuthMethod(
        id="aad49556-####-####-####-############",
        kind=MethodKind.HARDWARE_OATH,
        display_name="Amy Masters Token 1",
        created=None,
        model="Contoso Hardware Token 1000",
        detail="serial TOTP123456",
        status="activated",
    )
    assert to_method(DOCUMENTED["value"][0]) == token  # the polymorphic reader agrees
    bare = to_hardware_oath_method({"id": "t-1"})  # no device, no type: still a token, nothing invented
    assert (bare.kind, bare.display_name, bare.model, bare.detail, bare.status) == (
        MethodKind.HARDWARE_OATH,
        None,
        None,
        None,
        None,
    )


REVEALED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def token(id: str, status: str | None, created: datetime | None) -> AuthMethod:
    return AuthMethod(id, MethodKind.HARDWARE_OATH, "t", created, status=status)


def wizard(baseline: list[str] | None) -> Wizard:
    return Wizard(revealed_at=REVEALED, baseline_method_ids=baseline)


def test_an_activated_token_missing_from_the_baseline_is_new_even_if_assigned_before_the_reveal() -> None:
    before = REVEALED - timedelta(days=3)  # Graph's createdDateTime: when the helpdesk assigned it
    found = new_method(
        [token("old", "activated", before), token("t", "activated", before)],
        wizard(["old"]),
        GuideMethod.HARDWARE_OATH,
    )
    assert found is not None and found.id == "t"


def test_a_token_not_activated_is_never_new() -> None:
    for status in ("assigned", "failedActivation"):
        after = REVEALED + timedelta(minutes=3)
        assert new_method([token("t", status, after)], wizard([]), GuideMethod.HARDWARE_OATH) is None


def test_without_a_baseline_only_a_token_created_after_the_reveal_counts() -> None:
    old, fresh = REVEALED - timedelta(days=3), REVEALED + timedelta(minutes=1)
    assert new_method([token("t", "activated", old)], wizard(None), GuideMethod.HARDWARE_OATH) is None
    assert new_method([token("t", "activated", None)], wizard(None), GuideMethod.HARDWARE_OATH) is None
    found = new_method([token("t", "activated", fresh)], wizard(None), GuideMethod.HARDWARE_OATH)
    assert found is not None and found.id == "t"


# --- the setup's baseline -----------------------------------------------------------------------------------
async def test_the_baseline_holds_usable_tokens_and_is_unknown_when_beta_fails(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    from types import SimpleNamespace

    from bot.services.registration.preflight import baseline

    rt: Any = SimpleNamespace(directory=directory)
    active = give_token(sim, ada, "TK-7", "Work token")
    pending = give_token(sim, ada, "TK-8", "", activate=False)

    known = await baseline(rt, ada.id)
    assert known is not None and active in known and pending not in known  # activating it later counts
    assert len(known) == 3  # the password, the key and the active token

    sim.add_fault(Fault(method="GET", path=TOKENS, status=403, times=0))
    assert await baseline(rt, ada.id) is None  # then only creation times count, never a guess


async def test_a_display_reuses_a_recent_token_list_and_fresh_reads_refresh_it(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    give_token(sim, ada, "TK-1", "Work token")
    first = await directory.list_methods(ada.id, token_max_age=60)
    assert len(sim.requests_to("GET", TOKENS)) == 1
    again = await directory.list_methods(ada.id, token_max_age=60)  # App Home opened again: no beta call
    assert len(sim.requests_to("GET", TOKENS)) == 1 and len(sim.requests_to("GET", METHODS)) == 2
    assert [m.id for m in again] == [m.id for m in first]

    give_token(sim, ada, "TK-2", "Spare token")
    fresh = await directory.list_methods(ada.id)  # the watch or the lost-key flow: always asks Graph
    assert len(sim.requests_to("GET", TOKENS)) == 2
    shown = await directory.list_methods(ada.id, token_max_age=60)  # ...and the display sees that read
    assert len(sim.requests_to("GET", TOKENS)) == 2
    assert {m.display_name for m in shown} == {m.display_name for m in fresh} >= {"Work token", "Spare token"}

    [token] = [m for m in shown if m.display_name == "Spare token"]
    await directory.delete_method(ada.id, token)  # deleting a token forgets the list it was in
    after = await directory.list_methods(ada.id, token_max_age=60)
    assert len(sim.requests_to("GET", TOKENS)) == 3 and "Spare token" not in {m.display_name for m in after}
