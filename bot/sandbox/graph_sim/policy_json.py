"""The authentication methods policy and its method configurations as Graph writes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .policy import DEFAULT_PASSKEY_PROFILE_ID, Fido2Policy, MethodSetting, TapPolicy
from .router import BETA
from .tenant import Tenant

POLICY_DESCRIPTION = (
    "The tenant-wide policy that controls which authentication methods are allowed in the tenant, "
    "authentication method registration requirements, and self-service password reset settings"
)
_TYPE_PREFIX = "#microsoft.graph."


def _target(group_id: str, **extra: Any) -> dict[str, Any]:
    return {"targetType": "group", "id": group_id, "isRegistrationRequired": False, **extra}


def _excludes(groups: list[str]) -> list[dict[str, Any]]:
    return [{"targetType": "group", "id": g} for g in groups]


def tap_configuration(p: TapPolicy) -> dict[str, Any]:
    return {
        "@odata.type": _TYPE_PREFIX + "temporaryAccessPassAuthenticationMethodConfiguration",
        "id": "TemporaryAccessPass",
        "state": p.state,
        "defaultLifetimeInMinutes": p.default_lifetime_in_minutes,
        "defaultLength": p.default_length,
        "minimumLifetimeInMinutes": p.minimum_lifetime_in_minutes,
        "maximumLifetimeInMinutes": p.maximum_lifetime_in_minutes,
        "isUsableOnce": p.is_usable_once,
        "excludeTargets": _excludes(p.exclude_targets),
        "includeTargets": [_target(g) for g in p.include_targets],
    }


def _restrictions(p: Fido2Policy) -> dict[str, Any]:
    k = p.key_restrictions
    return {"isEnforced": k.is_enforced, "enforcementType": k.enforcement_type, "aaGuids": list(k.aaguids)}


def passkey_profile(p: Fido2Policy) -> dict[str, Any]:
    """The default profile carries the same rules as the (deprecated) top-level settings."""
    return {
        "id": DEFAULT_PASSKEY_PROFILE_ID,
        "name": "Default passkey profile",
        "passkeyTypes": "deviceBound",
        "attestationEnforcement": "registrationOnly" if p.is_attestation_enforced else "disabled",
        "keyRestrictions": _restrictions(p),
    }


def fido2_configuration(p: Fido2Policy, expand: set[str]) -> dict[str, Any]:
    out = {
        "@odata.type": _TYPE_PREFIX + "fido2AuthenticationMethodConfiguration",
        "id": "Fido2",
        "state": p.state,
        "isSelfServiceRegistrationAllowed": p.is_self_service_registration_allowed,
        "isAttestationEnforced": p.is_attestation_enforced,
        "defaultPasskeyProfile": DEFAULT_PASSKEY_PROFILE_ID,
        "keyRestrictions": _restrictions(p),
        "excludeTargets": _excludes(p.exclude_targets),
        "includeTargets": [
            _target(g, allowedPasskeyProfiles=[DEFAULT_PASSKEY_PROFILE_ID]) for g in p.include_targets
        ],
    }
    if "passkeyprofiles" in expand:
        out["passkeyProfiles"] = [passkey_profile(p)]
    return out


def _simple(
    odata_type: str, extra_target: dict[str, Any], **props: Any
) -> Callable[[str, MethodSetting], dict[str, Any]]:
    def build(method_id: str, s: MethodSetting) -> dict[str, Any]:
        return {
            "@odata.type": _TYPE_PREFIX + odata_type,
            "id": method_id,
            "state": s.state,
            **props,
            "excludeTargets": _excludes(s.exclude_targets),
            "includeTargets": [_target(g, **extra_target) for g in s.include_targets],
        }

    return build


_OTHERS: dict[str, Callable[[str, MethodSetting], dict[str, Any]]] = {
    "MicrosoftAuthenticator": _simple(
        "microsoftAuthenticatorAuthenticationMethodConfiguration",
        {"authenticationMode": "any"},
        isSoftwareOathEnabled=False,
    ),
    "Sms": _simple("smsAuthenticationMethodConfiguration", {"isUsableForSignIn": False}),
    "Voice": _simple("voiceAuthenticationMethodConfiguration", {}, isOfficePhoneAllowed=False),
    "Email": _simple("emailAuthenticationMethodConfiguration", {}, allowExternalIdToUseEmailOtp="default"),
    "SoftwareOath": _simple("softwareOathAuthenticationMethodConfiguration", {}),
    "X509Certificate": _simple("x509CertificateAuthenticationMethodConfiguration", {}),
    "HardwareOath": _simple("hardwareOathAuthenticationMethodConfiguration", {}),
}
_BETA_ONLY = {"HardwareOath"}


def configurations(tenant: Tenant, version: str, expand: set[str]) -> list[dict[str, Any]]:
    found = [fido2_configuration(tenant.fido2_policy, expand), tap_configuration(tenant.tap_policy)]
    for method_id, setting in tenant.other_methods.items():
        if method_id in _OTHERS and (version == BETA or method_id not in _BETA_ONLY):
            found.append(_OTHERS[method_id](method_id, setting))
    return found


def methods_policy(tenant: Tenant, version: str, expand: set[str]) -> dict[str, Any]:
    return {
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": POLICY_DESCRIPTION,
        "lastModifiedDateTime": "2026-01-05T10:00:00Z",
        "policyVersion": "1.5",
        "policyMigrationState": "migrationComplete",
        "reconfirmationInDays": None,
        "registrationEnforcement": {
            "authenticationMethodsRegistrationCampaign": {
                "snoozeDurationInDays": 1,
                "state": "default",
                "excludeTargets": [],
                "includeTargets": [
                    {
                        "id": "all_users",
                        "targetType": "group",
                        "targetedAuthenticationMethod": "microsoftAuthenticator",
                    }
                ],
            }
        },
        "authenticationMethodConfigurations": configurations(tenant, version, expand),
    }
