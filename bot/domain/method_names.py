"""What people call each kind of sign-in method: one table for the DMs, the App Home, the lost-key form
and the checks on the helpdesk card."""

from __future__ import annotations

from bot.directory.types import MethodKind

METHOD_LABELS: dict[MethodKind, str] = {
    MethodKind.FIDO2: "Security key (FIDO2)",
    MethodKind.WINDOWS_HELLO: "Windows Hello for Business",
    MethodKind.PLATFORM_CREDENTIAL: "Platform passkey",
    MethodKind.AUTHENTICATOR: "Microsoft Authenticator",
    MethodKind.PHONE: "Phone (SMS or call)",
    MethodKind.SOFTWARE_OATH: "Authenticator app code",
    MethodKind.HARDWARE_OATH: "Hardware token",
    MethodKind.TAP: "Temporary Access Pass",
    MethodKind.EMAIL: "Email",
    MethodKind.PASSWORD: "Password",
    MethodKind.OTHER: "Other method",
}
