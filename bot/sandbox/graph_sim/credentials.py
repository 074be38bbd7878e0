"""Authentication methods, Temporary Access Passes, sessions and mail: what the product changes."""

from __future__ import annotations

import base64
import secrets
import string
from datetime import datetime, timedelta

from bot.clock import Clock

from .directory import DirectoryState, new_id
from .errors import GraphError, bad_request, method_not_found, policy_refusal
from .model import (
    PHONE_METHOD_IDS,
    AuthenticatorMethod,
    AuthMethod,
    Fido2Method,
    MethodKind,
    PasswordMethod,
    PhoneMethod,
    Revocation,
    SentMail,
    SimUser,
    SoftwareOathMethod,
    TapRecord,
    TapUsability,
    WindowsHelloMethod,
)
from .policy import (
    Fido2Policy,
    MethodSetting,
    TapPolicy,
    default_other_methods,
    in_scope,
    tap_lifetime,
    tap_usable_once,
)

YUBIKEY_5_NFC_AAGUID = "fa2b99dc-9e39-4257-8f92-4a30d23c4118"
YUBIKEY_5_NFC_MODEL = "YubiKey 5 Series with NFC"
_TAP_ALPHABET = string.ascii_letters + string.digits + "#%+@!^&*$"
_START_GRACE = timedelta(minutes=5)

# Methods a user can delete through a typed collection (password has no DELETE at all).
_DELETABLE = {
    MethodKind.FIDO2,
    MethodKind.AUTHENTICATOR,
    MethodKind.PHONE,
    MethodKind.WINDOWS_HELLO,
    MethodKind.SOFTWARE_OATH,
    MethodKind.TAP,
}


class RegistrationRefused(Exception):
    """The browser would refuse this self-service registration; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fido2_method_id() -> str:
    """FIDO2 method ids are base64url credential ids with the stripped '=' count appended."""
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    stripped = encoded.rstrip("=")
    return f"{stripped}{len(encoded) - len(stripped)}"


class CredentialState(DirectoryState):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.tap_policy = TapPolicy()
        self.fido2_policy = Fido2Policy()
        self.other_methods: dict[str, MethodSetting] = default_other_methods()
        self.taps: list[TapRecord] = []
        self.revocations: list[Revocation] = []
        self.sent_mail: list[SentMail] = []
        self._methods: dict[str, list[AuthMethod]] = {}

    # -- seeding -------------------------------------------------------------------------------------

    def _attach(self, user_id: str, method: AuthMethod) -> str:
        if user_id not in self.users:
            raise KeyError(f"no user {user_id}")
        self._methods.setdefault(user_id, []).append(method)
        return method.id

    def add_fido2(
        self,
        user_id: str,
        display_name: str = "YubiKey 5 NFC",
        aaguid: str = YUBIKEY_5_NFC_AAGUID,
        model: str = YUBIKEY_5_NFC_MODEL,
        created: datetime | None = None,
    ) -> str:
        method = Fido2Method(
            fido2_method_id(), user_id, display_name, aaguid, model, created or self.clock.now()
        )
        return self._attach(user_id, method)

    def add_authenticator(
        self, user_id: str, display_name: str = "iPhone", created: datetime | None = None
    ) -> str:
        return self._attach(
            user_id, AuthenticatorMethod(new_id(), user_id, display_name, created or self.clock.now())
        )

    def add_phone(self, user_id: str, number: str = "+1 206 555 0100", phone_type: str = "mobile") -> str:
        if phone_type not in PHONE_METHOD_IDS:
            raise ValueError(f"phone_type must be one of {sorted(PHONE_METHOD_IDS)}")
        if self.find_method(user_id, MethodKind.PHONE, PHONE_METHOD_IDS[phone_type]) is not None:
            raise ValueError(f"user already has a {phone_type} phone")
        return self._attach(user_id, PhoneMethod(PHONE_METHOD_IDS[phone_type], user_id, number, phone_type))

    def add_windows_hello(
        self, user_id: str, display_name: str = "DESKTOP-KEYDESK", created: datetime | None = None
    ) -> str:
        method_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=") + "2"
        return self._attach(
            user_id, WindowsHelloMethod(method_id, user_id, display_name, created or self.clock.now())
        )

    def add_software_oath(self, user_id: str) -> str:
        return self._attach(user_id, SoftwareOathMethod(new_id(), user_id, self.clock.now()))

    # -- queries -------------------------------------------------------------------------------------

    def methods_of(self, user_id: str) -> list[AuthMethod]:
        """Every method Graph would list: the password first, then the rest in registration order."""
        user = self.users[user_id]
        found: list[AuthMethod] = [PasswordMethod(user_id, user.created)]
        found += self._methods.get(user_id, [])
        tap = self.current_tap(user_id)
        if tap is not None:
            found.append(tap)
        found += self._hardware_methods(user_id)
        return found

    def _hardware_methods(self, user_id: str) -> list[AuthMethod]:
        return []  # overridden by the OATH inventory

    def find_method(self, user_id: str, kind: MethodKind | None, method_id: str) -> AuthMethod | None:
        return next(
            (m for m in self.methods_of(user_id) if m.id == method_id and (kind is None or m.kind == kind)),
            None,
        )

    def taps_of(self, user_id: str) -> list[TapRecord]:
        """Every TAP ever issued to the user, oldest first (replaced and deleted ones included)."""
        return [t for t in self.taps if t.user_id == user_id]

    def current_tap(self, user_id: str) -> TapRecord | None:
        return next((t for t in reversed(self.taps) if t.user_id == user_id and not t.deleted), None)

    def tap_in_scope(self, user: SimUser) -> bool:
        p = self.tap_policy
        return in_scope(p.state, p.include_targets, p.exclude_targets, self.group_ids_of(user.id))

    def tap_usability(self, tap: TapRecord) -> tuple[bool, TapUsability]:
        now = self.clock.now()
        if tap.used_at is not None:
            return False, TapUsability.ONE_TIME_USED
        if now < tap.start:
            return False, TapUsability.NOT_YET_VALID
        if now >= tap.expires:
            return False, TapUsability.EXPIRED
        if not self.tap_in_scope(self.users[tap.user_id]):
            return False, TapUsability.DISABLED_BY_POLICY
        return True, TapUsability.ENABLED_BY_POLICY

    # -- Graph operations ----------------------------------------------------------------------------

    def issue_tap(
        self,
        user_id: str,
        *,
        lifetime: object = None,
        usable_once: object = None,
        start: datetime | None = None,
    ) -> TapRecord:
        """POST temporaryAccessPassMethods: validate against the policy, replace any existing pass."""
        user = self.users[user_id]
        if user.is_external_guest:
            raise bad_request("Temporary Access Pass cannot be added to an external guest user.")
        if not self.tap_in_scope(user):
            raise policy_refusal("TemporaryAccessPass")
        minutes = tap_lifetime(self.tap_policy, lifetime)
        once = tap_usable_once(self.tap_policy, usable_once)
        now = self.clock.now()
        if start is not None and start < now - _START_GRACE:
            raise bad_request("startDateTime cannot be in the past.")
        previous = self.current_tap(user_id)
        if previous is not None:
            previous.deleted_at = now
        length = self.tap_policy.default_length
        value = "".join(secrets.choice(_TAP_ALPHABET) for _ in range(length))
        tap = TapRecord(new_id(), user_id, value, now, start or now, minutes, once)
        self.taps.append(tap)
        return tap

    def delete_method(self, user_id: str, kind: MethodKind, method_id: str) -> None:
        """DELETE on a typed collection item; 404 when it is gone, 400 when Graph refuses."""
        method = self.find_method(user_id, kind, method_id)
        if method is None or kind not in _DELETABLE:
            raise method_not_found()
        if isinstance(method, TapRecord):
            method.deleted_at = self.clock.now()
            return
        alternate = self.find_method(user_id, MethodKind.PHONE, PHONE_METHOD_IDS["alternateMobile"])
        if isinstance(method, PhoneMethod) and method.phone_type == "mobile" and alternate is not None:
            raise bad_request("The mobile phone cannot be deleted while an alternate mobile phone exists.")
        self._methods[user_id].remove(method)

    def revoke_sessions(self, user_id: str) -> Revocation:
        revocation = Revocation(user_id, self.clock.now())
        self.users[user_id].sign_in_sessions_valid_from = revocation.at
        self.revocations.append(revocation)
        return revocation

    def record_mail(self, mail: SentMail) -> None:
        self.sent_mail.append(mail)

    # -- what the user does in the browser ------------------------------------------------------------

    def use_tap(self, user_id: str, value: str) -> bool:
        """Sign in with a TAP: True when it is the user's usable pass (a one-time pass is consumed)."""
        tap = self.current_tap(user_id)
        if tap is None or not secrets.compare_digest(tap.value, value) or not self.tap_usability(tap)[0]:
            return False
        if tap.is_usable_once:
            tap.used_at = self.clock.now()
        return True

    def register_fido2_as_user(self, user_id: str, display_name: str, aaguid: str, model: str) -> str:
        """Security info registration: needs a usable TAP or another strong method, and the policy's yes."""
        user = self.users[user_id]
        self._check_fido2_policy(user, aaguid)
        tap = self.current_tap(user_id)
        tap_ok = tap is not None and self.tap_usability(tap)[0]
        if not tap_ok and not self._has_strong_method(user_id):
            raise RegistrationRefused(
                "the user has no usable Temporary Access Pass or other method to sign in"
            )
        if tap_ok and tap is not None and tap.is_usable_once:
            tap.used_at = self.clock.now()
        return self.add_fido2(user_id, display_name, aaguid, model)

    def _has_strong_method(self, user_id: str) -> bool:
        return any(m.kind not in (MethodKind.PASSWORD, MethodKind.TAP) for m in self.methods_of(user_id))

    def _check_fido2_policy(self, user: SimUser, aaguid: str) -> None:
        p = self.fido2_policy
        if user.is_external_guest:
            raise RegistrationRefused("external guests cannot register passkeys")
        if not in_scope(p.state, p.include_targets, p.exclude_targets, self.group_ids_of(user.id)):
            raise RegistrationRefused("the FIDO2 policy does not cover this user")
        if not p.is_self_service_registration_allowed:
            raise RegistrationRefused("the FIDO2 policy does not allow self-service registration")
        if not p.key_restrictions.permits(aaguid):
            raise RegistrationRefused(f"the FIDO2 key restrictions do not allow AAGUID {aaguid}")


__all__ = ["CredentialState", "GraphError", "RegistrationRefused"]
