"""The tenant's authentication methods policy: the parts the product depends on, and who they cover."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from .errors import bad_request

ALL_USERS = "all_users"
API_MIN_LIFETIME = 10
API_MAX_LIFETIME = 43200
DEFAULT_PASSKEY_PROFILE_ID = "00000000-0000-0000-0000-000000000001"


@dataclass
class TapPolicy:
    """temporaryAccessPassAuthenticationMethodConfiguration; targets are group ids or "all_users"."""

    state: str = "enabled"
    include_targets: list[str] = field(default_factory=lambda: [ALL_USERS])
    exclude_targets: list[str] = field(default_factory=list)
    default_lifetime_in_minutes: int = 60
    minimum_lifetime_in_minutes: int = 60
    maximum_lifetime_in_minutes: int = 480
    is_usable_once: bool = False
    default_length: int = 8


@dataclass
class KeyRestrictions:
    is_enforced: bool = False
    enforcement_type: str = "block"  # "allow" | "block"
    aaguids: list[str] = field(default_factory=list)

    def permits(self, aaguid: str) -> bool:
        if not self.is_enforced:
            return True
        listed = aaguid.lower() in {a.lower() for a in self.aaguids}
        return listed if self.enforcement_type == "allow" else not listed


@dataclass
class Fido2Policy:
    """fido2AuthenticationMethodConfiguration; the default passkey profile mirrors these settings."""

    state: str = "enabled"
    is_self_service_registration_allowed: bool = True
    is_attestation_enforced: bool = True
    key_restrictions: KeyRestrictions = field(default_factory=KeyRestrictions)
    include_targets: list[str] = field(default_factory=lambda: [ALL_USERS])
    exclude_targets: list[str] = field(default_factory=list)


@dataclass
class MethodSetting:
    """Any other method configuration (Authenticator, SMS, ...): on/off and who it covers."""

    state: str = "enabled"
    include_targets: list[str] = field(default_factory=lambda: [ALL_USERS])
    exclude_targets: list[str] = field(default_factory=list)


def default_other_methods() -> dict[str, MethodSetting]:
    return {
        "MicrosoftAuthenticator": MethodSetting(),
        "Sms": MethodSetting(state="disabled"),
        "Voice": MethodSetting(state="disabled"),
        "Email": MethodSetting(state="disabled"),
        "SoftwareOath": MethodSetting(),
        "X509Certificate": MethodSetting(state="disabled"),
        "HardwareOath": MethodSetting(),
    }


def in_scope(
    state: str, include: Collection[str], exclude: Collection[str], user_groups: Collection[str]
) -> bool:
    """Enabled, included (directly or through "all_users") and not excluded: exclusion always wins."""
    if state != "enabled":
        return False
    if any(group in user_groups for group in exclude):
        return False
    return ALL_USERS in include or any(group in user_groups for group in include)


def tap_lifetime(policy: TapPolicy, requested: object) -> int:
    """The lifetime a new TAP gets, or the 400 Graph answers for one outside API or policy bounds."""
    if requested is None:
        return policy.default_lifetime_in_minutes
    if not isinstance(requested, int) or isinstance(requested, bool):
        raise bad_request("lifetimeInMinutes must be an integer.")
    if not API_MIN_LIFETIME <= requested <= API_MAX_LIFETIME:
        raise bad_request(
            f"lifetimeInMinutes must be between {API_MIN_LIFETIME} and {API_MAX_LIFETIME} minutes."
        )
    low, high = policy.minimum_lifetime_in_minutes, policy.maximum_lifetime_in_minutes
    if not low <= requested <= high:
        raise bad_request(
            f"The Temporary Access Pass lifetime must be between {low} and {high} minutes "
            "as configured in the Temporary Access Pass policy."
        )
    return requested


def tap_usable_once(policy: TapPolicy, requested: object) -> bool:
    if requested is None:
        return policy.is_usable_once
    if not isinstance(requested, bool):
        raise bad_request("isUsableOnce must be a boolean.")
    if policy.is_usable_once and not requested:
        raise bad_request(
            "The Temporary Access Pass policy requires one-time use passes; isUsableOnce cannot be false."
        )
    return requested
