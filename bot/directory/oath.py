"""Why Graph refused to assign and activate a hardware OATH token, as one of our exception types.

Microsoft documents only the success answer (204) of `assignAndActivateBySerialNumber` (beta); the
error codes and messages are not published, nor found in public issues. We therefore classify on the
HTTP status and on words in Graph's code/message, from the most specific to the least:

* "assigned" (or 409 Conflict)                       -> TokenAssignedElsewhere
* "serial", "device", "token" with 404/"not found"/"does not exist" -> UnknownToken
* "verification", "otp", or "code" with invalid/incorrect/wrong/expired -> WrongCode
* anything else keeps its generic type (NotFound for an unknown user, InvalidRequest, ...).
"""

from __future__ import annotations

from bot.directory.errors import (
    AlreadyExists,
    DirectoryError,
    InvalidRequest,
    NotFound,
    TokenAssignedElsewhere,
    UnknownToken,
    WrongCode,
)

_DIRECTORY_NOT_FOUND = "Request_ResourceNotFound"
_TOKEN_WORDS = ("serial", "device", "token", "hardwareoath")
_MISSING_WORDS = (
    "not found",
    "not exist",
    "n't exist",
    "unknown",
    "no such",
    "no hardware",
    "no token",
    "no device",
)
_CODE_WORDS = ("verification", "otp", "totp")
_BAD_WORDS = ("invalid", "incorrect", "wrong", "mismatch", "expired", "must be")


def classify_oath_error(err: DirectoryError) -> DirectoryError:
    if not isinstance(err, InvalidRequest | NotFound) or err.code == _DIRECTORY_NOT_FOUND:
        return err  # Request_ResourceNotFound comes from the directory: the user, not the token
    text = f"{err.code or ''} {err.message}".lower()
    if "assigned" in text or isinstance(err, AlreadyExists):
        return _recast(err, TokenAssignedElsewhere)
    if any(word in text for word in _TOKEN_WORDS) and (
        isinstance(err, NotFound) or any(word in text for word in _MISSING_WORDS)
    ):
        return _recast(err, UnknownToken)
    if any(word in text for word in _CODE_WORDS) or (
        "code" in text and any(word in text for word in _BAD_WORDS)
    ):
        return _recast(err, WrongCode)
    return err


def _recast(err: DirectoryError, kind: type[DirectoryError]) -> DirectoryError:
    """Our own sentence replaces Graph's (which could echo input); code and request id stay."""
    return kind(code=err.code, status=err.status, request_id=err.request_id, operation=err.operation)
