"""The Entra gateway as the rest of keydesk sees it. The Graph implementation lives in `graph.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.directory.types import (
    AuthMethod,
    DirectoryRole,
    DirectoryUser,
    Fido2Attestation,
    Fido2CreationOptions,
    Fido2Policy,
    IssuedTap,
    MethodList,
    TapInfo,
    TapPolicy,
    UserRisk,
)
from bot.secret import Secret


class Directory(Protocol):
    """Every Entra ID read and write keydesk makes. Failures raise `bot.directory.errors` exceptions."""

    async def get_user(self, id_or_upn: str) -> DirectoryUser:
        """The user by object id or UPN; NotFound when there is none."""
        ...

    async def find_users_by_email(self, email: str) -> list[DirectoryUser]:
        """Users whose mail or userPrincipalName equals `email` (case-insensitive in Graph)."""
        ...

    async def get_manager(self, user_id: str) -> DirectoryUser | None:
        """The user's manager, or None when none is set (or the manager is not a user)."""
        ...

    async def member_of_groups(self, user_id: str, group_ids: Sequence[str]) -> set[str]:
        """The subset of `group_ids` the user belongs to, nested membership included."""
        ...

    async def directory_roles(self, user_id: str) -> list[DirectoryRole]:
        """Active directory roles (also through role-assignable groups) and PIM-eligible ones."""
        ...

    async def list_methods(
        self, user_id: str, *, hardware_oath: bool = True, token_max_age: float = 0.0
    ) -> MethodList:
        """Every registered authentication method. Hardware OATH tokens are beta-only in Graph: with
        `hardware_oath` (the default) one more beta call lists them; when it fails (forbidden, down,
        throttled) that is logged and the list comes without them, `unchecked` saying so. Pass False
        where tokens don't matter, to save the call (`unchecked` says so too). A display that may show
        a token list up to `token_max_age` seconds old saves the beta call when one is that recent."""
        ...

    async def list_taps(self, user_id: str) -> list[TapInfo]:
        """The user's Temporary Access Passes (0 or 1), never with the value."""
        ...

    async def create_tap(self, user_id: str, *, lifetime_minutes: int, usable_once: bool) -> IssuedTap:
        """Create a pass (replacing any existing one). Not retried after 5xx/timeouts: on Unavailable the
        outcome is unknown and the caller reconciles with `list_taps`."""
        ...

    async def delete_tap(self, user_id: str, tap_id: str) -> bool:
        """True when deleted, False when it was already gone."""
        ...

    async def delete_method(self, user_id: str, method: AuthMethod) -> bool:
        """Delete through the method's typed collection (a hardware OATH token: beta's
        hardwareOathMethods, which unassigns it); False when already gone; the password method (and
        unknown kinds) raise InvalidRequest."""
        ...

    async def fido2_creation_options(
        self, user_id: str, challenge_timeout_minutes: int | None = None
    ) -> Fido2CreationOptions:
        """Creation options for provisioning a key on the user's behalf: v1.0 (five-minute challenge)
        when the timeout is unset or at most 5 minutes, beta for longer (up to 43200)."""
        ...

    async def register_fido2(
        self, user_id: str, display_name: str, attestation: Fido2Attestation, *, api_version: str = "v1.0"
    ) -> AuthMethod:
        """Register the passkey a key created from those options (same `api_version` as the options).
        KeyModelNotAllowed, ChallengeInvalid, AttestationRejected, KeyAlreadyRegistered say why not."""
        ...

    async def revoke_sessions(self, user_id: str) -> None:
        """Invalidate the user's refresh tokens and session cookies (takes minutes to bite)."""
        ...

    async def user_risk(self, user_id: str) -> UserRisk | None:
        """Entra ID Protection's risk record for the user (IdentityRiskyUser.Read.All, Entra ID P2);
        None when the user never had one. Forbidden when the tenant or the app may not read it."""
        ...

    async def tap_policy(self) -> TapPolicy: ...

    async def fido2_policy(self) -> Fido2Policy: ...

    async def send_mail(self, sender: str, to: Sequence[str], subject: str, text: str) -> None:
        """Send a plain-text mail from the `sender` mailbox (Mail.Send); not saved to Sent Items."""
        ...

    async def assign_hardware_oath(
        self, user_id: str, *, serial: str, code: Secret, display_name: str
    ) -> None:
        """Assign and activate a hardware OATH token by serial number (beta). WrongCode, UnknownToken,
        TokenAssignedElsewhere (all InvalidRequest) say why it was refused."""
        ...

    async def close(self) -> None: ...
