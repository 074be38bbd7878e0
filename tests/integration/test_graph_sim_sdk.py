"""The Graph simulator through the real msgraph-sdk / msgraph-beta-sdk clients (what production uses)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.authentication_method_state import AuthenticationMethodState
from msgraph.generated.models.fido2_authentication_method import Fido2AuthenticationMethod
from msgraph.generated.models.microsoft_authenticator_authentication_method import (
    MicrosoftAuthenticatorAuthenticationMethod,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_authentication_method import PasswordAuthenticationMethod
from msgraph.generated.models.phone_authentication_method import PhoneAuthenticationMethod
from msgraph.generated.models.software_oath_authentication_method import SoftwareOathAuthenticationMethod
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.models.temporary_access_pass_authentication_method_configuration import (
    TemporaryAccessPassAuthenticationMethodConfiguration,
)
from msgraph.generated.models.windows_hello_for_business_authentication_method import (
    WindowsHelloForBusinessAuthenticationMethod,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_beta import GraphServiceClient as BetaGraphServiceClient
from msgraph_beta.generated.directory.authentication_method_devices.hardware_oath_devices.hardware_oath_devices_request_builder import (
    HardwareOathDevicesRequestBuilder,
)
from msgraph_beta.generated.models.hardware_oath_token_status import HardwareOathTokenStatus
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError as BetaODataError
from msgraph_beta.generated.users.item.authentication.hardware_oath_methods.assign_and_activate_by_serial_number.assign_and_activate_by_serial_number_post_request_body import (
    AssignAndActivateBySerialNumberPostRequestBody,
)

from bot.clock import FrozenClock
from bot.sandbox.graph_sim import Fault, GraphSimulator
from bot.sandbox.graph_sim.roles import GLOBAL_ADMINISTRATOR, HELPDESK_ADMINISTRATOR
from bot.sandbox.graph_sim.sample import SampleIds, seed_sample

SCOPES = ["https://graph.microsoft.com/.default"]


class StaticTokenCredential:
    """Quacks like an azure-core AsyncTokenCredential and never contacts Entra ID."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@dataclass
class World:
    sim: GraphSimulator
    ids: SampleIds
    v1: GraphServiceClient
    beta: BetaGraphServiceClient
    clock: FrozenClock


@pytest.fixture
async def world(clock: FrozenClock) -> AsyncIterator[World]:
    sim = GraphSimulator(clock)
    ids = seed_sample(sim.tenant)
    await sim.start()
    v1 = GraphServiceClient(credentials=StaticTokenCredential(sim.token), scopes=SCOPES)
    v1.request_adapter.base_url = sim.v1_url
    beta = BetaGraphServiceClient(credentials=StaticTokenCredential(sim.token), scopes=SCOPES)
    beta.request_adapter.base_url = sim.beta_url
    yield World(sim, ids, v1, beta, clock)
    await sim.stop()


async def test_user_by_upn_with_at_sign_and_selected_account_state(world: World) -> None:
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "accountEnabled", "userType", "mail"]
    )
    user = await world.v1.users.by_user_id("ada@contoso.com").get(
        RequestConfiguration(query_parameters=query)
    )

    assert user is not None
    assert (user.id, user.account_enabled, user.user_type) == (world.ids.ada, True, "Member")
    request = world.sim.requests[-1]
    assert request.path == "/users/ada@contoso.com" and "ada%40contoso.com" in request.target
    assert request.headers["authorization"] == f"Bearer {world.sim.token}"


async def test_account_state_is_absent_unless_selected(world: World) -> None:
    user = await world.v1.users.by_user_id(world.ids.disabled).get()
    assert user is not None and user.account_enabled is None  # not in Graph's default property set

    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["accountEnabled"])
    user = await world.v1.users.by_user_id(world.ids.disabled).get(
        RequestConfiguration(query_parameters=query)
    )
    assert user is not None and user.account_enabled is False


async def test_filter_by_mail_or_upn(world: World) -> None:
    world.sim.tenant.users[world.ids.bob].mail = "robert.stone@contoso.com"  # mail drifted from the UPN
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="mail eq 'robert.stone@contoso.com' or userPrincipalName eq 'robert.stone@contoso.com'",
        select=["id", "mail"],
    )
    page = await world.v1.users.get(RequestConfiguration(query_parameters=query))
    assert page is not None and [u.id for u in page.value or []] == [world.ids.bob]


async def test_unsupported_filter_is_a_400(world: World) -> None:
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(filter="endsWith(mail,'@contoso.com')")
    with pytest.raises(ODataError) as caught:
        await world.v1.users.get(RequestConfiguration(query_parameters=query))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "Request_UnsupportedQuery"


async def test_manager_and_missing_manager(world: World) -> None:
    manager = await world.v1.users.by_user_id(world.ids.ada).manager.get()
    assert manager is not None and manager.id == world.ids.ceo

    with pytest.raises(ODataError) as caught:
        await world.v1.users.by_user_id(world.ids.ceo).manager.get()
    assert caught.value.response_status_code == 404
    assert caught.value.error is not None and caught.value.error.code == "Request_ResourceNotFound"
    assert caught.value.error.inner_error is not None and caught.value.error.inner_error.request_id


async def test_directory_roles_include_those_held_through_groups(world: World) -> None:
    roles = await world.v1.users.by_user_id(world.ids.admin).transitive_member_of.graph_directory_role.get()
    assert roles is not None
    assert {r.role_template_id for r in roles.value or []} == {GLOBAL_ADMINISTRATOR, HELPDESK_ADMINISTRATOR}
    assert world.sim.requests[-1].path.endswith("/transitiveMemberOf/graph.directoryRole")

    direct = await world.v1.users.by_user_id(world.ids.admin).member_of.graph_directory_role.get()
    assert direct is not None and [r.role_template_id for r in direct.value or []] == [HELPDESK_ADMINISTRATOR]


async def test_check_member_groups_is_transitive(world: World) -> None:
    body = CheckMemberGroupsPostRequestBody(group_ids=[world.ids.platform, world.ids.helpdesk])
    hit = await world.v1.users.by_user_id(world.ids.ada).check_member_groups.post(body)
    assert hit is not None and hit.value == [world.ids.platform]


async def test_methods_deserialise_into_typed_sdk_classes(world: World) -> None:
    methods = await world.v1.users.by_user_id(world.ids.ada).authentication.methods.get()
    assert methods is not None
    assert [type(m) for m in methods.value or []] == [
        PasswordAuthenticationMethod,
        Fido2AuthenticationMethod,
        MicrosoftAuthenticatorAuthenticationMethod,
        PhoneAuthenticationMethod,
        WindowsHelloForBusinessAuthenticationMethod,
        SoftwareOathAuthenticationMethod,
    ]
    fido2 = (methods.value or [])[1]
    assert isinstance(fido2, Fido2AuthenticationMethod) and fido2.id == world.ids.ada_fido2


async def test_tap_create_list_delete(world: World) -> None:
    taps = world.v1.users.by_user_id(world.ids.ada).authentication.temporary_access_pass_methods
    tap = await taps.post(
        TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=60, is_usable_once=True)
    )

    assert tap is not None and tap.temporary_access_pass == world.sim.tenant.taps_of(world.ids.ada)[0].value
    assert (tap.is_usable, tap.method_usability_reason, tap.lifetime_in_minutes) == (
        True,
        "EnabledByPolicy",
        60,
    )
    assert world.sim.requests[-1].json == {
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "isUsableOnce": True,
        "lifetimeInMinutes": 60,
    }
    listed = await taps.get()
    assert listed is not None and [(t.id, t.temporary_access_pass) for t in listed.value or []] == [
        (tap.id, None)
    ]

    assert tap.id is not None
    await taps.by_temporary_access_pass_authentication_method_id(tap.id).delete()
    listed = await taps.get()
    assert listed is not None and listed.value == []
    with pytest.raises(ODataError) as caught:
        await taps.by_temporary_access_pass_authentication_method_id(tap.id).delete()
    assert caught.value.response_status_code == 404


async def test_tap_expires_with_the_clock(world: World) -> None:
    taps = world.v1.users.by_user_id(world.ids.ada).authentication.temporary_access_pass_methods
    await taps.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=60))
    world.clock.advance(timedelta(minutes=61))
    listed = await taps.get()
    assert listed is not None
    assert [(t.is_usable, t.method_usability_reason) for t in listed.value or []] == [(False, "Expired")]


async def test_revoke_sessions(world: World) -> None:
    result = await world.v1.users.by_user_id(world.ids.ada).revoke_sign_in_sessions.post()
    assert result is not None and result.value is True
    assert world.sim.tenant.users[world.ids.ada].sign_in_sessions_valid_from == world.clock.now()
    assert [r.user_id for r in world.sim.tenant.revocations] == [world.ids.ada]


async def test_authentication_methods_policy(world: World) -> None:
    world.sim.tenant.tap_policy.maximum_lifetime_in_minutes = 240
    policy = await world.v1.policies.authentication_methods_policy.get()
    assert policy is not None
    tap = next(
        c
        for c in policy.authentication_method_configurations or []
        if isinstance(c, TemporaryAccessPassAuthenticationMethodConfiguration)
    )
    assert tap.state == AuthenticationMethodState.Enabled
    assert (tap.minimum_lifetime_in_minutes, tap.maximum_lifetime_in_minutes) == (60, 240)
    assert [t.id for t in tap.include_targets or []] == ["all_users"]

    configs = world.v1.policies.authentication_methods_policy.authentication_method_configurations
    fido2 = await configs.by_authentication_method_configuration_id("Fido2").get()
    assert fido2 is not None and fido2.odata_type == "#microsoft.graph.fido2AuthenticationMethodConfiguration"


async def test_default_client_double_slash_is_accepted(world: World) -> None:
    client = GraphServiceClient(credentials=StaticTokenCredential(world.sim.token), scopes=SCOPES)
    client.request_adapter.base_url = world.sim.v1_url + "/"  # the SDK's own default shape
    user = await client.users.by_user_id(world.ids.ada).get()
    assert user is not None and user.id == world.ids.ada
    assert (
        "//users" in world.sim.requests[-1].target
        and world.sim.requests[-1].path == f"/users/{world.ids.ada}"
    )


async def test_throttled_then_success_the_sdk_retries_after_retry_after(world: World) -> None:
    world.sim.add_fault(Fault(method="POST", path=r"/temporaryAccessPassMethods$", status=429, retry_after=1))
    taps = world.v1.users.by_user_id(world.ids.ada).authentication.temporary_access_pass_methods

    started = time.monotonic()
    tap = await taps.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=60))
    elapsed = time.monotonic() - started

    posts = world.sim.requests_to("POST", r"/temporaryAccessPassMethods$")
    assert [p.status for p in posts] == [429, 201]
    assert posts[1].headers["retry-attempt"] == "1"
    assert 1.0 <= elapsed < 3.0
    assert tap is not None and len(world.sim.tenant.taps_of(world.ids.ada)) == 1


async def test_throttling_surfaces_retry_after_when_retries_are_off(world: World) -> None:
    world.sim.add_fault(Fault(path="/revokeSignInSessions", status=429, retry_after=30))
    config: RequestConfiguration[Any] = RequestConfiguration(options=[RetryHandlerOption(max_retries=0)])
    with pytest.raises(ODataError) as caught:
        await world.v1.users.by_user_id(world.ids.ada).revoke_sign_in_sessions.post(config)
    assert caught.value.response_status_code == 429
    assert caught.value.response_headers is not None
    assert caught.value.response_headers["retry-after"] == "30"
    assert caught.value.error is not None and caught.value.error.code == "TooManyRequests"
    assert world.sim.tenant.revocations == []


async def test_drop_after_commit_loses_the_answer_but_not_the_effect(world: World) -> None:
    world.sim.add_fault(Fault(method="POST", path="/revokeSignInSessions$", drop_after_commit=True))
    with pytest.raises(httpx.TransportError):
        await world.v1.users.by_user_id(world.ids.ada).revoke_sign_in_sessions.post()
    assert [r.user_id for r in world.sim.tenant.revocations] == [world.ids.ada]
    assert world.sim.requests[-1].dropped and world.sim.requests[-1].status == 200

    result = await world.v1.users.by_user_id(world.ids.ada).revoke_sign_in_sessions.post()
    assert result is not None and result.value is True  # the fault was used once


async def test_latency(world: World) -> None:
    world.sim.add_fault(Fault(path=r"^/users/[^/]+$", status=0, latency=0.3))
    started = time.monotonic()
    await world.v1.users.by_user_id(world.ids.ada).get()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await world.v1.users.by_user_id(world.ids.ada).get()
    assert time.monotonic() - started < 0.3


async def test_beta_hardware_oath_assign_and_activate_by_serial_number(world: World) -> None:
    query = HardwareOathDevicesRequestBuilder.HardwareOathDevicesRequestBuilderGetQueryParameters(
        filter="serialNumber eq 'TOTP0001'"
    )
    devices = world.beta.directory.authentication_method_devices.hardware_oath_devices
    found = await devices.get(RequestConfiguration(query_parameters=query))
    assert found is not None and [d.status for d in found.value or []] == [HardwareOathTokenStatus.Available]

    code = world.sim.tenant.totp_now("TOTP0001")
    body = AssignAndActivateBySerialNumberPostRequestBody(
        verification_code=code, serial_number="TOTP0001", display_name="Desk token"
    )
    methods = world.beta.users.by_user_id(world.ids.ada).authentication.hardware_oath_methods
    await methods.assign_and_activate_by_serial_number.post(body)

    assert world.sim.requests[-1].json == {
        "displayName": "Desk token",
        "serialNumber": "TOTP0001",
        "verificationCode": code,
    }
    listed = await methods.get()
    assert listed is not None
    activated = [m.device for m in listed.value or [] if m.device and m.device.serial_number == "TOTP0001"]
    assert [(d.status, d.display_name) for d in activated] == [
        (HardwareOathTokenStatus.Activated, "Desk token")
    ]


async def test_beta_hardware_oath_wrong_code_is_refused(world: World) -> None:
    good = world.sim.tenant.totp_now("TOTP0001")
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    body = AssignAndActivateBySerialNumberPostRequestBody(verification_code=wrong, serial_number="TOTP0001")
    methods = world.beta.users.by_user_id(world.ids.ada).authentication.hardware_oath_methods
    with pytest.raises(BetaODataError) as caught:
        await methods.assign_and_activate_by_serial_number.post(body)
    assert caught.value.response_status_code == 400
    assert world.sim.tenant.device_by_serial("TOTP0001").assigned_to is None  # type: ignore[union-attr]
