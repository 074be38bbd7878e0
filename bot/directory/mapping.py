"""Graph JSON (camelCase, `@odata.type` on polymorphic items) -> our frozen values. No I/O, no SDK.

Readers are lenient about single fields (a missing or mistyped property reads as None, a malformed
date as None) and strict about the shape that decides completeness: a page whose `value` is not a
list of objects raises ValueError, which the gateway reports as an unreadable answer rather than an
empty (fail-open) result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from bot.directory.types import (
    AuthMethod,
    DirectoryRole,
    DirectoryUser,
    Fido2Policy,
    IssuedTap,
    MethodKind,
    PasskeyProfileRule,
    TapInfo,
    TapPolicy,
    UserRisk,
)
from bot.secret import Secret

JsonObject = dict[str, Any]
T = TypeVar("T")

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
ALL_USERS = "all_users"
ODATA_PREFIX = "#microsoft.graph."
TAP_ODATA_TYPE = ODATA_PREFIX + "temporaryAccessPassAuthenticationMethod"

_KIND_BY_ODATA_TYPE = {
    "fido2AuthenticationMethod": MethodKind.FIDO2,
    "microsoftAuthenticatorAuthenticationMethod": MethodKind.AUTHENTICATOR,
    "phoneAuthenticationMethod": MethodKind.PHONE,
    "passwordAuthenticationMethod": MethodKind.PASSWORD,
    "temporaryAccessPassAuthenticationMethod": MethodKind.TAP,
    "windowsHelloForBusinessAuthenticationMethod": MethodKind.WINDOWS_HELLO,
    "softwareOathAuthenticationMethod": MethodKind.SOFTWARE_OATH,
    "hardwareOathAuthenticationMethod": MethodKind.HARDWARE_OATH,
    "emailAuthenticationMethod": MethodKind.EMAIL,
    "platformCredentialAuthenticationMethod": MethodKind.PLATFORM_CREDENTIAL,
}


# --- field readers ----------------------------------------------------------------------------------


def text(data: JsonObject, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def flag(data: JsonObject, key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def number(data: JsonObject, key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def when(data: JsonObject, key: str) -> datetime | None:
    """An Edm.DateTimeOffset ('2025-03-04T05:06:07.1234567Z'; Python 3.11 reads 'Z' and 7 digits)."""
    value = text(data, key)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def child(data: JsonObject, key: str) -> JsonObject:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def children(data: JsonObject, key: str) -> list[JsonObject]:
    value = data.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def words(data: JsonObject, key: str) -> list[str]:
    """A collection of strings; flags enums (passkeyTypes) may come as one 'a,b' string instead."""
    value = data.get(key)
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


# --- pages ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_link: str | None


def page(parse: Callable[[JsonObject], T], data: JsonObject) -> Page[T]:
    value = data.get("value", [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("a collection answer without a list of objects")
    return Page([parse(item) for item in value], text(data, "@odata.nextLink"))


def string_values(data: JsonObject) -> list[str]:
    """`{"value": ["id", ...]}` (checkMemberGroups)."""
    value = data.get("value", [])
    if not isinstance(value, list):
        raise ValueError("a collection answer without a list")
    return [v for v in value if isinstance(v, str)]


# --- users and roles --------------------------------------------------------------------------------


def to_user(data: JsonObject) -> DirectoryUser:
    return DirectoryUser(
        id=text(data, "id") or "",
        user_principal_name=text(data, "userPrincipalName") or "",
        mail=text(data, "mail"),
        display_name=text(data, "displayName"),
        account_enabled=bool(flag(data, "accountEnabled")),
        user_type=text(data, "userType") or "Member",
        department=text(data, "department"),
        job_title=text(data, "jobTitle"),
        created=when(data, "createdDateTime"),
        on_premises_sync=bool(flag(data, "onPremisesSyncEnabled")),
    )


def to_manager(data: JsonObject) -> DirectoryUser | None:
    """/manager is a directoryObject: a user, or (rarely) an organisational contact we ignore."""
    odata_type = text(data, "@odata.type")
    if odata_type is None:
        return to_user(data) if text(data, "userPrincipalName") else None
    return to_user(data) if odata_type == ODATA_PREFIX + "user" else None


def to_active_role(data: JsonObject) -> DirectoryRole:
    template = text(data, "roleTemplateId") or text(data, "id") or ""
    return DirectoryRole(
        template_id=template, display_name=text(data, "displayName") or template, eligible=False
    )


def to_eligible_role(data: JsonObject) -> DirectoryRole:
    # For built-in roles the role definition id is the role template id.
    definition = child(data, "roleDefinition")
    template = text(definition, "templateId") or text(data, "roleDefinitionId") or ""
    name = text(definition, "displayName") or template
    return DirectoryRole(template_id=template, display_name=name, eligible=True)


# --- authentication methods -------------------------------------------------------------------------


def method_kind(odata_type: str | None) -> MethodKind:
    name = (odata_type or "").removeprefix("#").removeprefix("microsoft.graph.")
    return _KIND_BY_ODATA_TYPE.get(name, MethodKind.OTHER)


def to_method(data: JsonObject) -> AuthMethod:
    kind = method_kind(text(data, "@odata.type"))
    if kind is MethodKind.HARDWARE_OATH:
        return to_hardware_oath_method(data)
    display = text(data, "displayName")
    detail = None
    if kind is MethodKind.PHONE:
        display = text(data, "phoneType") or display
        detail = mask_phone(text(data, "phoneNumber"))
    elif kind is MethodKind.EMAIL:
        detail = mask_email(text(data, "emailAddress"))
    fido2 = kind is MethodKind.FIDO2
    return AuthMethod(
        id=text(data, "id") or "",
        kind=kind,
        display_name=display,
        created=when(data, "createdDateTime"),
        model=text(data, "model") if fido2 else None,
        aaguid=text(data, "aaGuid") if fido2 else None,
        detail=detail,
    )


def to_hardware_oath_method(data: JsonObject) -> AuthMethod:
    """A beta `hardwareOathAuthenticationMethod`. Graph shows the token itself in `device` (serial,
    manufacturer, model, name, status); the method carries little more than its id. Read from the beta
    `hardwareOathMethods` collection, so the kind does not depend on `@odata.type` being present."""
    device = child(data, "device")
    serial = text(device, "serialNumber")
    model = " ".join(p for p in (text(device, "manufacturer"), text(device, "model")) if p) or None
    return AuthMethod(
        id=text(data, "id") or "",
        kind=MethodKind.HARDWARE_OATH,
        display_name=text(data, "displayName") or text(device, "displayName"),
        created=when(data, "createdDateTime"),
        model=model,
        detail=f"serial {serial}" if serial else None,
        status=text(device, "status"),
    )


def mask_phone(number: str | None) -> str | None:
    """'+1 2065551234' -> '+1 ********34': enough to recognise one's own number, not to call it."""
    if not number:
        return None
    prefix, _, rest = number.partition(" ") if number.startswith("+") and " " in number else ("", "", number)
    digits = [c for c in rest if c.isdigit()]
    tail = "".join(digits[-2:])
    masked = "*" * max(0, len(digits) - 2) + tail
    return f"{prefix} {masked}".strip()


def mask_email(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def to_user_risk(data: JsonObject) -> UserRisk:
    """GET /identityProtection/riskyUsers/{id}: the riskyUser entity."""
    return UserRisk(
        user_id=text(data, "id") or "",
        risk_state=text(data, "riskState"),
        risk_level=text(data, "riskLevel"),
        risk_detail=text(data, "riskDetail"),
        last_updated=when(data, "riskLastUpdatedDateTime"),
    )


def to_tap_info(data: JsonObject) -> TapInfo:
    """Never reads `temporaryAccessPass` (null on every read after creation anyway)."""
    return TapInfo(
        id=text(data, "id") or "",
        created=when(data, "createdDateTime"),
        start=when(data, "startDateTime"),
        lifetime_minutes=number(data, "lifetimeInMinutes"),
        usable_once=flag(data, "isUsableOnce"),
        is_usable=flag(data, "isUsable"),
        usability_reason=text(data, "methodUsabilityReason"),
    )


def to_issued_tap(data: JsonObject) -> IssuedTap | None:
    """The creation answer; None when it carries no pass. The value goes straight into `Secret`."""
    value = text(data, "temporaryAccessPass")
    if not value:
        return None
    return IssuedTap(
        id=text(data, "id") or "",
        value=Secret(value),
        created=when(data, "createdDateTime"),
        start=when(data, "startDateTime"),
        lifetime_minutes=number(data, "lifetimeInMinutes"),
        usable_once=flag(data, "isUsableOnce"),
    )


# --- policies ---------------------------------------------------------------------------------------


def _targets(config: JsonObject) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    include = [i for t in children(config, "includeTargets") if (i := text(t, "id"))]
    exclude = tuple(i for t in children(config, "excludeTargets") if (i := text(t, "id")))
    return ALL_USERS in include, tuple(i for i in include if i != ALL_USERS), exclude


def is_enabled(config: JsonObject) -> bool:
    return text(config, "state") == "enabled"


def to_tap_policy(config: JsonObject) -> TapPolicy:
    """Defaults where Graph leaves a field out are the documented ones (60/60/480 minutes, 8 chars)."""
    all_users, include, exclude = _targets(config)
    return TapPolicy(
        enabled=is_enabled(config),
        include_all_users=all_users,
        include_group_ids=include,
        exclude_group_ids=exclude,
        default_lifetime=number(config, "defaultLifetimeInMinutes") or 60,
        min_lifetime=number(config, "minimumLifetimeInMinutes") or 60,
        max_lifetime=number(config, "maximumLifetimeInMinutes") or 480,
        usable_once_enforced=bool(flag(config, "isUsableOnce")),
        default_length=number(config, "defaultLength") or 8,
    )


def _restrictions(data: JsonObject) -> tuple[bool, str | None, tuple[str, ...]]:
    """(enforced, enforcement type, lower-cased AAGUIDs) of a keyRestrictions object."""
    restrictions = child(data, "keyRestrictions")
    return (
        bool(flag(restrictions, "isEnforced")),
        text(restrictions, "enforcementType"),
        tuple(a.lower() for a in words(restrictions, "aaGuids")),
    )


def to_profile(data: JsonObject) -> PasskeyProfileRule:
    enforced, enforcement, aaguids = _restrictions(data)
    return PasskeyProfileRule(
        id=text(data, "id") or "",
        name=text(data, "name"),
        attestation_enforced=text(data, "attestationEnforcement") not in (None, "disabled"),
        restrictions_enforced=enforced,
        enforcement_type=enforcement,
        aaguids=aaguids,
        passkey_types=tuple(words(data, "passkeyTypes")),
    )


def to_fido2_policy(config: JsonObject) -> Fido2Policy:
    all_users, include, exclude = _targets(config)
    profiles = tuple(to_profile(p) for p in children(config, "passkeyProfiles"))
    applicable = applicable_profiles(config, profiles)
    if applicable:
        attestation, enforced, enforcement, aaguids = fold_profiles(applicable)
    else:  # a tenant not migrated to passkey profiles: the (deprecated) top-level fields
        attestation = bool(flag(config, "isAttestationEnforced"))
        enforced, enforcement, aaguids = _restrictions(config)
    return Fido2Policy(
        enabled=is_enabled(config),
        self_service_allowed=bool(flag(config, "isSelfServiceRegistrationAllowed")),
        attestation_enforced=attestation,
        restrictions_enforced=enforced,
        enforcement_type=enforcement if enforced else None,
        aaguids=aaguids if enforced else (),
        include_all_users=all_users,
        include_group_ids=include,
        exclude_group_ids=exclude,
        profiles=profiles,
    )


def applicable_profiles(
    config: JsonObject, profiles: tuple[PasskeyProfileRule, ...]
) -> list[PasskeyProfileRule]:
    """The profiles the include targets point at; a target naming none gets the default profile."""
    if not profiles:
        return []
    by_id = {p.id.lower(): p for p in profiles}
    default = (text(config, "defaultPasskeyProfile") or "").lower()
    wanted: list[str] = []
    for target in children(config, "includeTargets"):
        named = [p.lower() for p in words(target, "allowedPasskeyProfiles")]
        wanted.extend(named or [default])
    found = [by_id[i] for i in dict.fromkeys(wanted) if i in by_id]
    if found:
        return found
    return [by_id[default]] if default in by_id else list(profiles)


def fold_profiles(profiles: Iterable[PasskeyProfileRule]) -> tuple[bool, bool, str | None, tuple[str, ...]]:
    """Strict fold: a key counts as allowed only if every applicable profile allows it, and attestation
    counts as enforced if any profile enforces it. Returns (attestation, enforced, type, aaguids)."""
    profiles = list(profiles)
    attestation = any(p.attestation_enforced for p in profiles)
    allow_lists = [
        set(p.aaguids) for p in profiles if p.restrictions_enforced and p.enforcement_type == "allow"
    ]
    blocked: set[str] = set()
    for p in profiles:
        if p.restrictions_enforced and p.enforcement_type == "block":
            blocked |= set(p.aaguids)
    if allow_lists:
        allowed = set.intersection(*allow_lists) - blocked
        return attestation, True, "allow", tuple(sorted(allowed))
    if blocked:
        return attestation, True, "block", tuple(sorted(blocked))
    return attestation, False, None, ()
