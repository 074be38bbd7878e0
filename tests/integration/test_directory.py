"""The Entra gateway against the Graph simulator, through the real msgraph SDK: every Directory call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.config import Settings
from bot.directory import (
    AuthMethod,
    DirectoryError,
    Forbidden,
    InvalidRequest,
    MethodKind,
    NotFound,
    TokenAssignedElsewhere,
    UnknownToken,
    WrongCode,
    build_directory,
)
from bot.directory.graph import GraphDirectory
from bot.sandbox.graph_sim import Fault, GraphSimulator, KeyRestrictions, SimUser
from bot.secret import Secret

TOKEN = "sim-graph-token"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
AUTH_ADMIN = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
YUBIKEY_AAGUID = "fa2b99dc-9e39-4257-8f92-4a30d23c4118"
OATH_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CREATED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


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
    boss = sim.tenant.add_user("Bea Boss", "bea@contoso.com")
    return sim.tenant.add_user(
        "Ada Lovelace",
        "ada@contoso.com",
        department="R&D",
        job_title="Engineer",
        manager_id=boss.id,
        created=CREATED,
    )


# --- users ------------------------------------------------------------------------------------------


async def test_get_user_by_upn_maps_every_field_and_encodes_the_at_sign(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    user = await directory.get_user("ada@contoso.com")

    assert user.id == ada.id
    assert (user.user_principal_name, user.mail, user.display_name) == (
        "ada@contoso.com",
        "ada@contoso.com",
        "Ada Lovelace",
    )
    assert (user.account_enabled, user.user_type, user.department, user.job_title) == (
        True,
        "Member",
        "R&D",
        "Engineer",
    )
    assert user.created == CREATED and user.on_premises_sync is False
    (request,) = sim.requests_to("GET", r"^/users/ada@contoso\.com$")
    assert "/v1.0/users/ada%40contoso.com?" in request.target  # no '//' and '@' percent-encoded
    assert "accountEnabled" in request.query["$select"]


async def test_get_user_reads_disabled_guests_and_synced_accounts(
    directory: GraphDirectory, sim: GraphSimulator
) -> None:
    upn = "eve_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    sim.tenant.add_user("Eve Guest", upn, user_type="Guest", account_enabled=False, on_premises_sync=True)

    user = await directory.get_user(upn)

    assert (user.user_type, user.is_guest, user.account_enabled, user.on_premises_sync) == (
        "Guest",
        True,
        False,
        True,
    )
    (request,) = sim.requests
    assert "%23EXT%23%40contoso.onmicrosoft.com" in request.target  # '#' would otherwise start a fragment


@pytest.mark.parametrize("bad", ["../groups/all", "ada@contoso.com?$select=x", "a%2Fb", "", " ", "a b"])
async def test_ids_that_could_escape_their_path_segment_are_refused_before_any_call(
    directory: GraphDirectory, sim: GraphSimulator, bad: str
) -> None:
    with pytest.raises(InvalidRequest):
        await directory.get_user(bad)
    with pytest.raises(InvalidRequest):
        await directory.delete_tap("ada@contoso.com", bad)
    assert sim.requests == []


async def test_unknown_user_is_not_found_with_a_safe_message(directory: GraphDirectory) -> None:
    with pytest.raises(NotFound) as caught:
        await directory.get_user("ghost@contoso.com")
    assert caught.value.status == 404 and caught.value.code == "Request_ResourceNotFound"
    assert "{" not in str(caught.value) and len(str(caught.value)) < 250  # a sentence, never the JSON body


async def test_find_users_by_email_matches_mail_or_upn(
    directory: GraphDirectory, sim: GraphSimulator
) -> None:
    by_mail = sim.tenant.add_user("Carl", "carl@contoso.onmicrosoft.com", mail="carl@contoso.com")
    by_upn = sim.tenant.add_user("Dora", "dora@contoso.com", mail="d.explorer@contoso.com")

    assert [u.id for u in await directory.find_users_by_email("carl@contoso.com")] == [by_mail.id]
    assert [u.id for u in await directory.find_users_by_email(" dora@contoso.com ")] == [by_upn.id]
    assert await directory.find_users_by_email("nobody@contoso.com") == []


async def test_email_filter_escapes_quotes_and_resists_injection(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    obrien = sim.tenant.add_user("Pat O'Brien", "pat@contoso.com", mail="o'brien@contoso.com")

    assert [u.id for u in await directory.find_users_by_email("o'brien@contoso.com")] == [obrien.id]
    injected = "x@y.com' or userPrincipalName eq 'ada@contoso.com"
    assert await directory.find_users_by_email(injected) == []
    filters = [r.query["$filter"] for r in sim.requests_to("GET", r"^/users$")]
    assert filters[0] == "mail eq 'o''brien@contoso.com' or userPrincipalName eq 'o''brien@contoso.com'"
    with pytest.raises(InvalidRequest):
        await directory.find_users_by_email("ada@contoso.com\nBcc: x@evil.example")
    assert len(sim.requests) == 2


async def test_get_manager_returns_the_manager_or_none(directory: GraphDirectory, ada: SimUser) -> None:
    manager = await directory.get_manager(ada.id)
    assert manager is not None and manager.user_principal_name == "bea@contoso.com"
    assert await directory.get_manager(manager.id) is None


async def test_member_of_groups_is_transitive_and_chunked_by_twenty(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    inner = sim.tenant.add_group("Inner", members=[ada.id])
    outer = sim.tenant.add_group("Outer", members=[inner.id])
    other = sim.tenant.add_group("Other")
    unrelated = [sim.tenant.add_group(f"G{i}").id for i in range(22)]

    found = await directory.member_of_groups(ada.id, [*unrelated, other.id, outer.id])

    assert found == {outer.id}
    bodies = [r.json for r in sim.requests_to("POST", r"/checkMemberGroups$")]
    assert [len(b["groupIds"]) for b in bodies] == [20, 4]
    assert await directory.member_of_groups(ada.id, []) == set()
    assert len(sim.requests_to("POST", r"/checkMemberGroups$")) == 2


async def test_directory_roles_active_direct_via_group_and_eligible(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    admins = sim.tenant.add_group("Helpdesk admins", members=[ada.id], role_assignable=True)
    sim.tenant.assign_role(admins.id, AUTH_ADMIN)
    sim.tenant.assign_role(ada.id, GLOBAL_ADMIN, eligible=True)

    roles = await directory.directory_roles(ada.id)

    assert [(r.template_id, r.display_name, r.eligible) for r in roles] == [
        (AUTH_ADMIN, "Authentication Administrator", False),
        (GLOBAL_ADMIN, "Global Administrator", True),
    ]
    assert sim.requests_to("GET", r"/transitiveMemberOf/graph\.directoryRole$")


async def test_directory_roles_by_upn_still_find_eligible_roles(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.tenant.assign_role(ada.id, GLOBAL_ADMIN, eligible=True)

    roles = await directory.directory_roles("ada@contoso.com")

    assert [(r.template_id, r.eligible) for r in roles] == [(GLOBAL_ADMIN, True)]
    (query,) = [r.query["$filter"] for r in sim.requests_to("GET", "roleEligibilityScheduleInstances$")]
    assert query == f"principalId eq '{ada.id}'"


async def test_directory_roles_follow_next_links(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.page_size = 1
    for template in (GLOBAL_ADMIN, AUTH_ADMIN, "fe930be7-5e62-47db-91af-98c3a49a38b1"):
        sim.tenant.assign_role(ada.id, template)

    roles = await directory.directory_roles(ada.id)

    assert len(roles) == 3 and not any(r.eligible for r in roles)
    assert len(sim.requests_to("GET", r"/transitiveMemberOf/graph\.directoryRole$")) >= 3


async def test_a_user_without_roles_has_none(directory: GraphDirectory, ada: SimUser) -> None:
    assert await directory.directory_roles(ada.id) == []


# --- authentication methods ---------------------------------------------------------------------------


async def test_list_methods_maps_kinds_and_masks_the_phone(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    t = sim.tenant
    t.add_fido2(ada.id, "Blue key")
    t.add_authenticator(ada.id, "Ada's iPhone")
    t.add_phone(ada.id, "+1 206 555 0142")
    t.add_windows_hello(ada.id, "ADA-LAPTOP")
    t.add_software_oath(ada.id)

    methods = {m.kind: m for m in await directory.list_methods(ada.id)}

    assert set(methods) == {
        MethodKind.PASSWORD,
        MethodKind.FIDO2,
        MethodKind.AUTHENTICATOR,
        MethodKind.PHONE,
        MethodKind.WINDOWS_HELLO,
        MethodKind.SOFTWARE_OATH,
    }
    key = methods[MethodKind.FIDO2]
    assert (key.display_name, key.aaguid, key.kind.phishing_resistant) == ("Blue key", YUBIKEY_AAGUID, True)
    assert key.model and key.created is not None
    phone = methods[MethodKind.PHONE]
    assert phone.display_name == "mobile" and phone.detail is not None and phone.detail.endswith("42")
    assert "555" not in phone.detail
    assert methods[MethodKind.AUTHENTICATOR].display_name == "Ada's iPhone"
    assert not methods[MethodKind.AUTHENTICATOR].kind.phishing_resistant


async def test_tap_lifecycle_create_list_delete(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    issued = await directory.create_tap(ada.id, lifetime_minutes=60, usable_once=True)

    (record,) = sim.tenant.taps_of(ada.id)
    assert isinstance(issued.value, Secret) and issued.value.reveal() == record.value
    assert record.value not in repr(issued) and record.value not in str(issued)
    assert (issued.id, issued.lifetime_minutes, issued.usable_once) == (record.id, 60, True)
    (listed,) = await directory.list_taps(ada.id)
    assert listed.id == issued.id and listed.lifetime_minutes == 60 and listed.usability_reason
    assert not hasattr(listed, "value")
    assert await directory.delete_tap(ada.id, issued.id) is True
    assert await directory.delete_tap(ada.id, issued.id) is False
    assert await directory.list_taps(ada.id) == []


async def test_created_tap_signs_the_user_in(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    issued = await directory.create_tap(ada.id, lifetime_minutes=60, usable_once=True)
    assert sim.tenant.use_tap(ada.id, issued.value.reveal()) is True
    assert sim.tenant.use_tap(ada.id, issued.value.reveal()) is False  # one-time pass consumed


async def test_tap_outside_policy_limits_is_refused_with_the_graph_code(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await directory.create_tap(ada.id, lifetime_minutes=5000, usable_once=True)
    assert caught.value.status == 400 and caught.value.code
    assert sim.tenant.taps_of(ada.id) == []


@pytest.mark.parametrize(
    "kind",
    [
        MethodKind.FIDO2,
        MethodKind.AUTHENTICATOR,
        MethodKind.PHONE,
        MethodKind.WINDOWS_HELLO,
        MethodKind.SOFTWARE_OATH,
    ],
)
async def test_delete_method_routes_each_kind_to_its_collection(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser, kind: MethodKind
) -> None:
    t = sim.tenant
    t.add_fido2(ada.id)
    t.add_authenticator(ada.id)
    t.add_phone(ada.id)
    t.add_windows_hello(ada.id)
    t.add_software_oath(ada.id)
    method = next(m for m in await directory.list_methods(ada.id) if m.kind is kind)

    assert await directory.delete_method(ada.id, method) is True

    remaining = {m.id for m in t.methods_of(ada.id)}
    assert method.id not in remaining and len(remaining) == 5  # password + the four others
    (delete,) = sim.requests_to("DELETE", "/authentication/")
    assert delete.path.split("/")[-2] == str(_SIM_COLLECTION[kind])
    assert await directory.delete_method(ada.id, method) is False  # already gone


_SIM_COLLECTION = {
    MethodKind.FIDO2: "fido2Methods",
    MethodKind.AUTHENTICATOR: "microsoftAuthenticatorMethods",
    MethodKind.PHONE: "phoneMethods",
    MethodKind.WINDOWS_HELLO: "windowsHelloForBusinessMethods",
    MethodKind.SOFTWARE_OATH: "softwareOathMethods",
}


async def test_password_and_unknown_methods_are_not_deleted(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    password = next(m for m in await directory.list_methods(ada.id) if m.kind is MethodKind.PASSWORD)
    with pytest.raises(InvalidRequest):
        await directory.delete_method(ada.id, password)
    with pytest.raises(InvalidRequest):
        await directory.delete_method(ada.id, AuthMethod("x", MethodKind.OTHER, None, None))
    assert sim.requests_to("DELETE", ".*") == []


async def test_hardware_oath_method_is_deleted_through_beta(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    device = sim.tenant.add_hardware_oath_device("HW-1", "Contoso", "Token6", OATH_SECRET, assigned_to=ada.id)

    assert await directory.delete_method(ada.id, AuthMethod(device, MethodKind.HARDWARE_OATH, None, None))
    (delete,) = sim.requests_to("DELETE", "/hardwareOathMethods/")
    assert delete.version == "beta"
    assert sim.tenant.hardware_oath_devices[device].assigned_to is None


async def test_revoke_sessions_accepts_graphs_200_true(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    await directory.revoke_sessions(ada.id)
    (revocation,) = sim.tenant.revocations
    assert revocation.user_id == ada.id
    (request,) = sim.requests_to("POST", "/revokeSignInSessions$")
    assert request.status == 200


# --- policies and mail -------------------------------------------------------------------------------


async def test_tap_policy_is_parsed(directory: GraphDirectory, sim: GraphSimulator) -> None:
    policy = sim.tenant.tap_policy
    policy.include_targets = ["group-onboarding"]
    policy.exclude_targets = ["group-breakglass"]
    policy.minimum_lifetime_in_minutes, policy.default_lifetime_in_minutes = 30, 45
    policy.maximum_lifetime_in_minutes, policy.is_usable_once, policy.default_length = 120, True, 12

    parsed = await directory.tap_policy()

    assert parsed.enabled and not parsed.include_all_users
    assert (parsed.include_group_ids, parsed.exclude_group_ids) == (
        ("group-onboarding",),
        ("group-breakglass",),
    )
    assert (parsed.min_lifetime, parsed.default_lifetime, parsed.max_lifetime) == (30, 45, 120)
    assert parsed.usable_once_enforced and parsed.default_length == 12
    assert parsed.clamp_lifetime(600) == 120 and parsed.clamp_lifetime(10) == 30


async def test_disabled_tap_policy_reads_as_disabled(directory: GraphDirectory, sim: GraphSimulator) -> None:
    sim.tenant.tap_policy.state = "disabled"
    assert (await directory.tap_policy()).enabled is False


async def test_fido2_policy_reads_passkey_profiles_with_expand(
    directory: GraphDirectory, sim: GraphSimulator
) -> None:
    policy = sim.tenant.fido2_policy
    policy.is_self_service_registration_allowed = False
    policy.key_restrictions = KeyRestrictions(
        is_enforced=True, enforcement_type="allow", aaguids=[YUBIKEY_AAGUID.upper()]
    )
    policy.exclude_targets = ["group-contractors"]

    parsed = await directory.fido2_policy()

    assert parsed.enabled and not parsed.self_service_allowed and parsed.attestation_enforced
    assert (parsed.restrictions_enforced, parsed.enforcement_type, parsed.aaguids) == (
        True,
        "allow",
        (YUBIKEY_AAGUID,),
    )
    assert parsed.include_all_users and parsed.exclude_group_ids == ("group-contractors",)
    assert parsed.allows_aaguid(YUBIKEY_AAGUID) and not parsed.allows_aaguid(
        "00000000-0000-0000-0000-000000000000"
    )
    (profile,) = parsed.profiles
    assert profile.passkey_types == ("deviceBound",)
    expanded = sim.requests_to("GET", "/authenticationMethodConfigurations/Fido2$")
    assert [r.query.get("$expand") for r in expanded] == [None, "passkeyProfiles"]


async def test_fido2_policy_without_restrictions(directory: GraphDirectory) -> None:
    parsed = await directory.fido2_policy()
    assert not parsed.restrictions_enforced and parsed.enforcement_type is None and parsed.aaguids == ()
    assert parsed.allows_aaguid("anything")


async def test_send_mail_sends_plain_text_without_saving(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    await directory.send_mail(
        "bea@contoso.com", ["ada@contoso.com", "it@contoso.com"], "Your key", "Hello Ada"
    )

    (mail,) = sim.tenant.sent_mail
    assert (mail.sender_upn, mail.subject, mail.body, mail.body_type) == (
        "bea@contoso.com",
        "Your key",
        "Hello Ada",
        "text",
    )
    assert mail.to_addresses == ["ada@contoso.com", "it@contoso.com"]
    (request,) = sim.requests_to("POST", "/sendMail$")
    assert request.json["SaveToSentItems"] is False  # the SDK's casing of the action parameter
    with pytest.raises(InvalidRequest):
        await directory.send_mail("bea@contoso.com", [], "x", "y")


# --- hardware OATH -------------------------------------------------------------------------------------


async def test_assign_hardware_oath_with_the_right_code(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    device = sim.tenant.add_hardware_oath_device("HW-100", "Contoso", "Token6", OATH_SECRET)
    code = sim.tenant.totp_now("HW-100")

    await directory.assign_hardware_oath(
        ada.id, serial="HW-100", code=Secret(code), display_name="Ada's token"
    )

    state = sim.tenant.hardware_oath_devices[device]
    assert state.assigned_to == ada.id and state.status.value == "activated"
    assert state.display_name == "Ada's token"
    (request,) = sim.requests_to("POST", "/assignAndActivateBySerialNumber$")
    assert request.version == "beta"


async def test_assign_hardware_oath_wrong_code(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    device = sim.tenant.add_hardware_oath_device("HW-101", "Contoso", "Token6", OATH_SECRET)
    wrong = f"{(int(sim.tenant.totp_now('HW-101')) + 500_000) % 1_000_000:06d}"

    with pytest.raises(WrongCode) as caught:
        await directory.assign_hardware_oath(ada.id, serial="HW-101", code=Secret(wrong), display_name="t")

    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert isinstance(caught.value, InvalidRequest) and caught.value.status == 400
    assert sim.tenant.hardware_oath_devices[device].assigned_to is None


async def test_assign_hardware_oath_unknown_serial(directory: GraphDirectory, ada: SimUser) -> None:
    with pytest.raises(UnknownToken):
        await directory.assign_hardware_oath(ada.id, serial="NOPE-1", code=Secret("123456"), display_name="t")


async def test_assign_hardware_oath_taken_by_someone_else(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    other = sim.tenant.add_user("Ola Other", "ola@contoso.com")
    sim.tenant.add_hardware_oath_device("HW-102", "Contoso", "Token6", OATH_SECRET, assigned_to=other.id)
    code = sim.tenant.totp_now("HW-102")

    with pytest.raises(TokenAssignedElsewhere):
        await directory.assign_hardware_oath(ada.id, serial="HW-102", code=Secret(code), display_name="t")


async def test_assign_hardware_oath_unknown_user_stays_not_found(
    directory: GraphDirectory, sim: GraphSimulator
) -> None:
    sim.tenant.add_hardware_oath_device("HW-103", "Contoso", "Token6", OATH_SECRET)
    with pytest.raises(NotFound) as caught:
        await directory.assign_hardware_oath(
            "ghost@contoso.com", serial="HW-103", code=Secret(sim.tenant.totp_now("HW-103")), display_name="t"
        )
    assert not isinstance(caught.value, UnknownToken)


# --- error mapping ---------------------------------------------------------------------------------------


async def test_403_maps_to_forbidden_with_a_safe_message(
    directory: GraphDirectory, sim: GraphSimulator, ada: SimUser
) -> None:
    sim.add_fault(
        Fault(method="GET", path="/authentication/methods$", status=403, message="Insufficient privileges.")
    )

    with pytest.raises(Forbidden) as caught:
        await directory.list_methods(ada.id)

    err = caught.value
    assert (err.status, err.code, err.operation) == (403, "Authorization_RequestDenied", "list_methods")
    assert str(err) == "list_methods: Authorization_RequestDenied: Insufficient privileges."
    assert err.request_id  # kept for Microsoft support
    assert isinstance(err, DirectoryError)


async def test_400_maps_to_invalid_request_with_code(directory: GraphDirectory, sim: GraphSimulator) -> None:
    sim.add_fault(
        Fault(method="GET", path="^/users$", status=400, code="Request_BadRequest", message="Bad filter.")
    )
    with pytest.raises(InvalidRequest) as caught:
        await directory.find_users_by_email("ada@contoso.com")
    assert (caught.value.code, caught.value.message) == ("Request_BadRequest", "Bad filter.")
