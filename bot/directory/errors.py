"""The gateway's exceptions. Messages are safe to log and show: a code and a short sentence, never a
secret, never a raw response body."""

from __future__ import annotations


class DirectoryError(Exception):
    """Base class. `status` is the HTTP status when Graph answered; `request_id` helps Microsoft support."""

    default_message = "Microsoft Graph call failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.operation = operation
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.operation, self.code]
        prefix = ": ".join(p for p in parts if p)
        return f"{prefix}: {self.message}" if prefix else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status})"


class NotFound(DirectoryError):
    default_message = "not found"


class Forbidden(DirectoryError):
    default_message = "keydesk is not allowed to do this in Entra ID"


class Unauthenticated(Forbidden):
    """keydesk could not get or use a token (wrong secret, expired certificate, no managed identity)."""

    default_message = "keydesk could not authenticate to Microsoft Graph"


class Throttled(DirectoryError):
    """Graph asked us to slow down for longer than this call may wait. Retry after `retry_after` s."""

    default_message = "Microsoft Graph is throttling keydesk"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, request_id=request_id, operation=operation)
        self.retry_after = retry_after


class Unavailable(DirectoryError):
    """5xx, a timeout or a transport error: the outcome of a write is unknown; reconcile by reading."""

    default_message = "Microsoft Graph is unavailable"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, request_id=request_id, operation=operation)
        self.retry_after = retry_after


class InvalidRequest(DirectoryError):
    """Graph refused the request as made (4xx other than 401/403/404/429)."""

    default_message = "Microsoft Graph refused the request"


class AlreadyExists(InvalidRequest):
    default_message = "it already exists"


class WrongCode(InvalidRequest):
    """Hardware OATH activation: the verification code did not match the token."""

    default_message = "the code shown on the token was not accepted"


class UnknownToken(InvalidRequest):
    """Hardware OATH: no token with that serial number in the tenant's inventory."""

    default_message = "no hardware token with that serial number is known to Entra ID"


class TokenAssignedElsewhere(InvalidRequest):
    """Hardware OATH: the token is already assigned to another user."""

    default_message = "that hardware token is already assigned to someone else"


class KeyModelNotAllowed(InvalidRequest):
    """FIDO2: the tenant's passkey policy (AAGUID restrictions or attestation enforcement) refuses this
    key model."""

    default_message = "the authentication methods policy does not allow this security key model"


class ChallengeInvalid(InvalidRequest):
    """FIDO2: the registration's challenge expired, was already used, or was never issued for this user.
    Get fresh creation options and create the passkey again."""

    default_message = "the passkey challenge has expired or was already used"


class AttestationRejected(InvalidRequest):
    """FIDO2: Entra could not verify the key's registration (attestation, origin or RP id)."""

    default_message = "Microsoft Entra could not verify the security key's registration"


class KeyAlreadyRegistered(AlreadyExists):
    """FIDO2: this credential (the passkey on this key) is already registered."""

    default_message = "this passkey is already registered in Entra ID"
