"""Values the Entra gateway hands out: plain frozen dataclasses, free of any SDK import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from bot.secret import Secret


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    mail: str | None
    display_name: str | None
    account_enabled: bool
    user_type: str  # "Member" or "Guest"
    department: str | None = None
    job_title: str | None = None
    created: datetime | None = None
    on_premises_sync: bool = False

    @property
    def is_guest(self) -> bool:
        return self.user_type.lower() == "guest"


class MethodKind(StrEnum):
    FIDO2 = "fido2"
    AUTHENTICATOR = "authenticator"
    PHONE = "phone"
    PASSWORD = "password"  # noqa: S105 - a method kind, not a password
    TAP = "tap"
    WINDOWS_HELLO = "windows_hello"
    SOFTWARE_OATH = "software_oath"
    HARDWARE_OATH = "hardware_oath"
    EMAIL = "email"
    PLATFORM_CREDENTIAL = "platform_credential"
    OTHER = "other"

    @property
    def phishing_resistant(self) -> bool:
        return self in _PHISHING_RESISTANT


_PHISHING_RESISTANT = frozenset({MethodKind.FIDO2, MethodKind.WINDOWS_HELLO, MethodKind.PLATFORM_CREDENTIAL})


@dataclass(frozen=True, slots=True)
class AuthMethod:
    id: str
    kind: MethodKind
    display_name: str | None
    created: datetime | None
    model: str | None = None
    aaguid: str | None = None
    detail: str | None = None  # e.g. the masked phone number or the phone type
    # Hardware OATH only: the token's status in Graph ("assigned", "activated", "failedActivation").
    status: str | None = None

    @property
    def usable(self) -> bool:
        """False for a hardware token that is assigned but not (yet) activated: it signs nobody in."""
        return self.kind is not MethodKind.HARDWARE_OATH or self.status in (None, "activated")


class MethodList(list[AuthMethod]):
    """A user's methods as `Directory.list_methods` found them.

    `unchecked` names the kinds Graph was not (successfully) asked about this time: hardware OATH tokens
    are listed by a separate beta call, skipped when not needed and left out when it fails. For those
    kinds, "not in the list" does not mean "not in Entra": never conclude that one is gone from it.
    """

    unchecked: frozenset[MethodKind]

    def __init__(self, methods: Iterable[AuthMethod] = (), *, unchecked: Iterable[MethodKind] = ()) -> None:
        super().__init__(methods)
        self.unchecked = frozenset(unchecked)

    def checked(self, kind: MethodKind | str) -> bool:
        """Whether absence from this list means absence from Entra for methods of `kind`."""
        return kind not in self.unchecked  # a StrEnum: its plain value matches too


@dataclass(frozen=True, slots=True)
class TapInfo:
    """A Temporary Access Pass as Graph lists it later: never the value."""

    id: str
    created: datetime | None
    start: datetime | None
    lifetime_minutes: int | None
    usable_once: bool | None
    is_usable: bool | None
    usability_reason: str | None


@dataclass(frozen=True, slots=True)
class IssuedTap:
    """The one answer that carries the pass; the value exists only inside `Secret`."""

    id: str
    value: Secret
    created: datetime | None
    start: datetime | None
    lifetime_minutes: int | None
    usable_once: bool | None


@dataclass(frozen=True, slots=True)
class DirectoryRole:
    template_id: str
    display_name: str
    eligible: bool  # True: PIM-eligible, not active right now


@dataclass(frozen=True, slots=True)
class UserRisk:
    """Entra ID Protection's risk record for a user (`riskyUser`): camelCase enum values as Graph sends
    them (riskState "atRisk", "confirmedCompromised", "remediated", ...; riskLevel "low" .. "high")."""

    user_id: str
    risk_state: str | None
    risk_level: str | None
    risk_detail: str | None
    last_updated: datetime | None

    @property
    def at_risk(self) -> bool:
        return (self.risk_state or "").lower() in ("atrisk", "confirmedcompromised")


@dataclass(frozen=True, slots=True)
class TapPolicy:
    enabled: bool
    include_all_users: bool
    include_group_ids: tuple[str, ...]
    exclude_group_ids: tuple[str, ...]
    default_lifetime: int
    min_lifetime: int
    max_lifetime: int
    usable_once_enforced: bool
    default_length: int

    def clamp_lifetime(self, minutes: int) -> int:
        return max(self.min_lifetime, min(self.max_lifetime, minutes))


@dataclass(frozen=True, slots=True)
class PasskeyProfileRule:
    """One passkey profile of the FIDO2 policy, as read (before folding)."""

    id: str
    name: str | None
    attestation_enforced: bool
    restrictions_enforced: bool
    enforcement_type: str | None  # "allow" / "block"
    aaguids: tuple[str, ...]
    passkey_types: tuple[str, ...]  # "deviceBound", "synced"


@dataclass(frozen=True, slots=True)
class Fido2Policy:
    """The FIDO2 (passkey) method policy.

    When the tenant uses passkey profiles, the top-level fields are the *strict fold* of the profiles
    that apply to the included targets: what holds for every targeted user (see mapping.fold_profiles).
    `profiles` keeps the profiles as read.
    """

    enabled: bool
    self_service_allowed: bool
    attestation_enforced: bool
    restrictions_enforced: bool
    enforcement_type: str | None  # "allow" / "block" / None
    aaguids: tuple[str, ...]
    include_all_users: bool
    include_group_ids: tuple[str, ...]
    exclude_group_ids: tuple[str, ...]
    profiles: tuple[PasskeyProfileRule, ...] = field(default=())

    def allows_aaguid(self, aaguid: str | None) -> bool:
        """Whether a key of this model may be registered by every targeted user."""
        if not self.restrictions_enforced:
            return True
        listed = aaguid is not None and aaguid.lower() in {a.lower() for a in self.aaguids}
        return listed if self.enforcement_type == "allow" else not listed


@dataclass(frozen=True, slots=True)
class Fido2CreationOptions:
    """Entra's `webauthnCredentialCreationOptions` for one user: the WebAuthn `publicKey` options exactly
    as Graph returned them (camelCase JSON, binary values as Graph encoded them), the moment the
    challenge stops being accepted, and the API version that issued it (register through the same)."""

    public_key: Mapping[str, Any]
    challenge_expires: datetime | None
    api_version: str  # "v1.0" or "beta"

    @property
    def rp_id(self) -> str:
        return str(self.public_key.get("rp", {}).get("id") or "")

    @property
    def user_name(self) -> str | None:
        name = self.public_key.get("user", {}).get("name")
        return name if isinstance(name, str) else None

    def as_json(self) -> dict[str, Any]:
        """The options as Graph shapes them, to hand to the desk agent unchanged."""
        return {
            "challengeTimeoutDateTime": (
                self.challenge_expires.isoformat().replace("+00:00", "Z") if self.challenge_expires else None
            ),
            "publicKey": _plain(self.public_key),
        }


@dataclass(frozen=True, slots=True)
class Fido2Attestation:
    """What the key produced, as Graph's `publicKeyCredential` wants it (all binary as base64url)."""

    credential_id: str
    client_data_json: str
    attestation_object: str
    client_extension_results: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_public_key_credential(cls, data: Mapping[str, Any]) -> Fido2Attestation:
        """From the agent's JSON (`{"id", "response": {"clientDataJSON", "attestationObject"}, ...}`);
        ValueError when a part is missing."""
        response = data.get("response")
        if not isinstance(response, Mapping):
            raise ValueError("publicKeyCredential has no response")
        parts = (data.get("id"), response.get("clientDataJSON"), response.get("attestationObject"))
        if not all(isinstance(p, str) and p for p in parts):
            raise ValueError("publicKeyCredential lacks id, clientDataJSON or attestationObject")
        extensions = data.get("clientExtensionResults") or {}
        if not isinstance(extensions, Mapping):
            raise ValueError("clientExtensionResults is not an object")
        cred_id, client_data, attestation = (str(p) for p in parts)
        return cls(cred_id, client_data, attestation, MappingProxyType(dict(extensions)))

    def public_key_credential(self) -> dict[str, Any]:
        return {
            "id": self.credential_id,
            "response": {
                "clientDataJSON": self.client_data_json,
                "attestationObject": self.attestation_object,
            },
            "clientExtensionResults": dict(self.client_extension_results),
        }


def _plain(value: Any) -> Any:
    """A JSON-ready deep copy (mappings become dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
