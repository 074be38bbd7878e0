"""Authentication methods and hardware tokens as Graph writes them (always with `@odata.type`)."""

from __future__ import annotations

from typing import Any

from .model import (
    AuthenticatorMethod,
    AuthMethod,
    Fido2Method,
    HardwareOathDevice,
    HardwareOathMethod,
    PasswordMethod,
    PhoneMethod,
    SoftwareOathMethod,
    TapRecord,
    WindowsHelloMethod,
)
from .tenant import Tenant
from .timefmt import graph_time

ODATA_TYPES: dict[type, str] = {
    PasswordMethod: "#microsoft.graph.passwordAuthenticationMethod",
    Fido2Method: "#microsoft.graph.fido2AuthenticationMethod",
    AuthenticatorMethod: "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    PhoneMethod: "#microsoft.graph.phoneAuthenticationMethod",
    WindowsHelloMethod: "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    SoftwareOathMethod: "#microsoft.graph.softwareOathAuthenticationMethod",
    TapRecord: "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
    HardwareOathMethod: "#microsoft.graph.hardwareOathAuthenticationMethod",
}


def tap_json(tenant: Tenant, tap: TapRecord, *, reveal: bool = False) -> dict[str, Any]:
    """The pass's value appears only in the creation response; every later read shows null."""
    usable, reason = tenant.tap_usability(tap)
    return {
        "@odata.type": ODATA_TYPES[TapRecord],
        "id": tap.id,
        "temporaryAccessPass": tap.value if reveal else None,
        "createdDateTime": graph_time(tap.created),
        "startDateTime": graph_time(tap.start),
        "lifetimeInMinutes": tap.lifetime_minutes,
        "isUsableOnce": tap.is_usable_once,
        "isUsable": usable,
        "methodUsabilityReason": reason.value,
    }


def device_json(tenant: Tenant, device: HardwareOathDevice) -> dict[str, Any]:
    owner = tenant.users.get(device.assigned_to or "")
    return {
        "@odata.type": "#microsoft.graph.hardwareOathTokenAuthenticationMethodDevice",
        "id": device.id,
        "displayName": device.display_name,
        "serialNumber": device.serial_number,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "secretKey": None,
        "timeIntervalInSeconds": device.time_interval,
        "status": device.status.value,
        "hashFunction": device.hash_function,
        "lastUsedDateTime": graph_time(device.last_used),
        "assignedTo": {"id": owner.id, "displayName": owner.display_name} if owner else None,
    }


def method_json(tenant: Tenant, method: AuthMethod) -> dict[str, Any]:
    out: dict[str, Any] = {"@odata.type": ODATA_TYPES[type(method)], "id": method.id}
    if isinstance(method, TapRecord):
        return tap_json(tenant, method)
    if isinstance(method, PasswordMethod):
        out.update(password=None, createdDateTime=graph_time(method.created))
    elif isinstance(method, Fido2Method):
        out.update(
            displayName=method.display_name,
            createdDateTime=graph_time(method.created),
            aaGuid=method.aaguid,
            model=method.model,
            attestationCertificates=list(method.attestation_certificates),
            attestationLevel=method.attestation_level,
            passkeyType=method.passkey_type,
        )
    elif isinstance(method, AuthenticatorMethod):
        out.update(
            displayName=method.display_name,
            createdDateTime=graph_time(method.created),
            deviceTag=method.device_tag,
            phoneAppVersion=method.phone_app_version,
        )
    elif isinstance(method, PhoneMethod):
        out.update(
            phoneNumber=method.phone_number,
            phoneType=method.phone_type,
            smsSignInState=method.sms_sign_in_state,
        )
    elif isinstance(method, WindowsHelloMethod):
        out.update(
            displayName=method.display_name,
            createdDateTime=graph_time(method.created),
            keyStrength=method.key_strength,
        )
    elif isinstance(method, SoftwareOathMethod):
        out.update(secretKey=None)
    elif isinstance(method, HardwareOathMethod):
        out.update(
            createdDateTime=graph_time(method.device.assigned_at),
            lastUsedDateTime=graph_time(method.device.last_used),
            device=device_json(tenant, method.device),
        )
    return out
