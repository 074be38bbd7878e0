"""The simulated directory's records. Mutable on purpose: tests edit them to create drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"
PHONE_METHOD_IDS = {
    "mobile": "3179e48a-750b-4051-897c-87b9720928f7",
    "alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
    "office": "e37fc753-ff3b-4958-9484-eaa9425c82bc",
}


class MethodKind(StrEnum):
    """Authentication method types, valued as Graph's typed collection names."""

    PASSWORD = "passwordMethods"
    FIDO2 = "fido2Methods"
    AUTHENTICATOR = "microsoftAuthenticatorMethods"
    PHONE = "phoneMethods"
    WINDOWS_HELLO = "windowsHelloForBusinessMethods"
    SOFTWARE_OATH = "softwareOathMethods"
    TAP = "temporaryAccessPassMethods"
    HARDWARE_OATH = "hardwareOathMethods"


class TapUsability(StrEnum):
    ENABLED_BY_POLICY = "EnabledByPolicy"
    DISABLED_BY_POLICY = "DisabledByPolicy"
    EXPIRED = "Expired"
    NOT_YET_VALID = "NotYetValid"
    ONE_TIME_USED = "OneTimeUsed"


class OathStatus(StrEnum):
    AVAILABLE = "available"
    ASSIGNED = "assigned"
    ACTIVATED = "activated"
    FAILED_ACTIVATION = "failedActivation"


@dataclass
class SimUser:
    id: str
    display_name: str
    upn: str
    mail: str | None
    created: datetime
    account_enabled: bool = True
    user_type: str = "Member"
    department: str | None = None
    job_title: str | None = None
    manager_id: str | None = None
    on_premises_sync: bool = False
    given_name: str | None = None
    surname: str | None = None
    sign_in_sessions_valid_from: datetime | None = None

    @property
    def is_external_guest(self) -> bool:
        """B2B guests from another tenant carry #EXT# in their UPN; internal guests do not."""
        return self.user_type == "Guest" and "#EXT#" in self.upn.upper()


@dataclass
class SimGroup:
    id: str
    display_name: str
    created: datetime
    members: list[str] = field(default_factory=list)
    role_assignable: bool = False
    description: str | None = None


@dataclass
class RoleAssignment:
    id: str
    principal_id: str
    role_template_id: str
    eligible: bool
    created: datetime


@dataclass
class PasswordMethod:
    kind: ClassVar[MethodKind] = MethodKind.PASSWORD
    user_id: str
    created: datetime | None
    id: str = PASSWORD_METHOD_ID


@dataclass
class Fido2Method:
    kind: ClassVar[MethodKind] = MethodKind.FIDO2
    id: str
    user_id: str
    display_name: str
    aaguid: str
    model: str | None
    created: datetime
    attestation_level: str = "attested"
    passkey_type: str = "deviceBound"
    attestation_certificates: list[str] = field(default_factory=list)


@dataclass
class AuthenticatorMethod:
    kind: ClassVar[MethodKind] = MethodKind.AUTHENTICATOR
    id: str
    user_id: str
    display_name: str
    created: datetime
    device_tag: str = "SoftwareTokenActivated"
    phone_app_version: str = "6.2409.6094"


@dataclass
class PhoneMethod:
    kind: ClassVar[MethodKind] = MethodKind.PHONE
    id: str
    user_id: str
    phone_number: str
    phone_type: str
    sms_sign_in_state: str = "notAllowedByPolicy"


@dataclass
class WindowsHelloMethod:
    kind: ClassVar[MethodKind] = MethodKind.WINDOWS_HELLO
    id: str
    user_id: str
    display_name: str
    created: datetime
    key_strength: str = "normal"


@dataclass
class SoftwareOathMethod:
    kind: ClassVar[MethodKind] = MethodKind.SOFTWARE_OATH
    id: str
    user_id: str
    created: datetime


@dataclass
class TapRecord:
    """One issued Temporary Access Pass. `value` lives only here, in the simulator's memory."""

    kind: ClassVar[MethodKind] = MethodKind.TAP
    id: str
    user_id: str
    value: str = field(repr=False)
    created: datetime
    start: datetime
    lifetime_minutes: int
    is_usable_once: bool
    used_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def lifetime(self) -> timedelta:
        return timedelta(minutes=self.lifetime_minutes)

    @property
    def usable_once(self) -> bool:
        return self.is_usable_once

    @property
    def expires(self) -> datetime:
        return self.start + self.lifetime

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass
class HardwareOathDevice:
    id: str
    serial_number: str
    manufacturer: str
    model: str
    secret_key: str = field(repr=False)
    created: datetime
    time_interval: int = 30
    hash_function: str = "hmacsha1"
    display_name: str | None = None
    assigned_to: str | None = None
    assigned_at: datetime | None = None
    status: OathStatus = OathStatus.AVAILABLE
    last_used: datetime | None = None
    last_step: int | None = None


@dataclass
class HardwareOathMethod:
    """A hardware token as seen from its user (same id as the device, like Graph)."""

    kind: ClassVar[MethodKind] = MethodKind.HARDWARE_OATH
    id: str
    user_id: str
    device: HardwareOathDevice


AuthMethod = (
    PasswordMethod
    | Fido2Method
    | AuthenticatorMethod
    | PhoneMethod
    | WindowsHelloMethod
    | SoftwareOathMethod
    | TapRecord
    | HardwareOathMethod
)


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str | None = None


@dataclass(frozen=True)
class SentMail:
    """A message accepted by POST /users/{id}/sendMail."""

    sender_id: str
    sender_upn: str
    subject: str
    body_type: str
    body: str
    to: tuple[Recipient, ...]
    cc: tuple[Recipient, ...]
    save_to_sent_items: bool
    sent_at: datetime
    raw: dict[str, object] = field(repr=False, hash=False, compare=False)

    @property
    def to_addresses(self) -> list[str]:
        return [r.address for r in self.to]


@dataclass(frozen=True)
class Revocation:
    user_id: str
    at: datetime
