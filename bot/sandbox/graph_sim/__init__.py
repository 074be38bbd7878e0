"""A faithful, stateful Microsoft Graph simulator (users, groups, roles, authentication methods, TAPs,
the authentication methods policy, hardware OATH tokens, sendMail) with fault injection."""

from __future__ import annotations

from .credentials import YUBIKEY_5_NFC_AAGUID, YUBIKEY_5_NFC_MODEL, RegistrationRefused
from .errors import GraphError
from .faults import Fault
from .model import (
    PASSWORD_METHOD_ID,
    PHONE_METHOD_IDS,
    AuthenticatorMethod,
    AuthMethod,
    Fido2Method,
    HardwareOathDevice,
    HardwareOathMethod,
    MethodKind,
    OathStatus,
    PasswordMethod,
    PhoneMethod,
    Recipient,
    Revocation,
    RoleAssignment,
    SentMail,
    SimGroup,
    SimUser,
    SoftwareOathMethod,
    TapRecord,
    TapUsability,
    WindowsHelloMethod,
)
from .policy import ALL_USERS, Fido2Policy, KeyRestrictions, MethodSetting, TapPolicy
from .recording import RecordedRequest
from .roles import BUILT_IN_ROLES
from .sample import SampleIds, seed_sample
from .server import GraphSimulator
from .tenant import Tenant
from .totp import totp

__all__ = [
    "ALL_USERS",
    "BUILT_IN_ROLES",
    "PASSWORD_METHOD_ID",
    "PHONE_METHOD_IDS",
    "YUBIKEY_5_NFC_AAGUID",
    "YUBIKEY_5_NFC_MODEL",
    "AuthMethod",
    "AuthenticatorMethod",
    "Fault",
    "Fido2Method",
    "Fido2Policy",
    "GraphError",
    "GraphSimulator",
    "HardwareOathDevice",
    "HardwareOathMethod",
    "KeyRestrictions",
    "MethodKind",
    "MethodSetting",
    "OathStatus",
    "PasswordMethod",
    "PhoneMethod",
    "Recipient",
    "RecordedRequest",
    "RegistrationRefused",
    "Revocation",
    "RoleAssignment",
    "SampleIds",
    "SentMail",
    "SimGroup",
    "SimUser",
    "SoftwareOathMethod",
    "TapPolicy",
    "TapRecord",
    "TapUsability",
    "Tenant",
    "WindowsHelloMethod",
    "seed_sample",
    "totp",
]
