"""FIDO2 provisioning on a user's behalf: which API version, the beta URL, reading Entra's creation
options, and why a registration was refused.

Version choice (graph.md §0.5): v1.0's challenge lives a fixed 5 minutes and takes no parameter;
beta's `creationOptions(challengeTimeoutInMinutes=N)` takes 5..43200. The beta SDK's request builder
for it never defines its `@challengeTimeoutInMinutes` alias (graph.md §0.6), so its URL template is
written out here with the parameter inline, as Graph documents the call.

Microsoft documents the success answers of `creationOptions` and `POST fido2Methods`, not their error
codes. We classify on the HTTP status and on words in Graph's code/message, most specific first (the
same approach as `oath.py`):

* 409, or "already" with registered/exists                            -> KeyAlreadyRegistered
* "challenge" (expired, invalid, used, not issued)                     -> ChallengeInvalid
* "aaguid", "key restriction", "model" with not allowed/blocked/...,
  or "attestation" with "enforce" (enforcement on, chain not trusted)  -> KeyModelNotAllowed
* "attestation", "clientdata", "origin", "signature", "rp id", "verif" -> AttestationRejected
* anything else keeps its generic type (NotFound for an unknown user, InvalidRequest, ...).
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType

from bot.directory import mapping, wire
from bot.directory.errors import (
    AlreadyExists,
    AttestationRejected,
    ChallengeInvalid,
    DirectoryError,
    InvalidRequest,
    KeyAlreadyRegistered,
    KeyModelNotAllowed,
)
from bot.directory.types import Fido2CreationOptions

V1 = "v1.0"
BETA = "beta"
V1_CHALLENGE_MINUTES = 5
MAX_CHALLENGE_MINUTES = 43200
FIDO2_ODATA_TYPE = mapping.ODATA_PREFIX + "fido2AuthenticationMethod"
BETA_CREATION_OPTIONS_TEMPLATE = (
    "{+baseurl}/users/{user%2Did}/authentication/fido2Methods/"
    "creationOptions(challengeTimeoutInMinutes={minutes})"
)
_MODEL_WORDS = ("aaguid", "key restriction", "keyrestriction", "model", "passkey profile")
_REFUSED_WORDS = ("not allowed", "not permitted", "blocked", "disallowed", "restricted", "does not allow")
_VERIFY_WORDS = ("attestation", "clientdata", "origin", "signature", "rpid", "rp id", "verif")


def use_beta(challenge_timeout_minutes: int | None) -> bool:
    """Only a challenge longer than v1.0's fixed five minutes needs the beta endpoint."""
    return challenge_timeout_minutes is not None and challenge_timeout_minutes > V1_CHALLENGE_MINUTES


def check_minutes(minutes: int | None) -> None:
    if minutes is None:
        return
    if isinstance(minutes, bool) or not V1_CHALLENGE_MINUTES <= minutes <= MAX_CHALLENGE_MINUTES:
        raise InvalidRequest(
            f"a passkey challenge lasts {V1_CHALLENGE_MINUTES} to {MAX_CHALLENGE_MINUTES} minutes",
            code="badChallengeTimeout",
            operation="fido2_creation_options",
        )


def to_creation_options(version: str, data: wire.JsonObject) -> Fido2CreationOptions:
    """Graph's answer (the beta doc example wraps it in "value"; real answers do not) -> our value.
    ValueError (the runner: Unavailable "unreadable") when it carries no challenge."""
    inner = data.get("value", data)
    if not isinstance(inner, dict):
        raise ValueError("creation options are not an object")
    public_key = inner.get("publicKey")
    if not isinstance(public_key, dict) or not public_key.get("challenge") or not public_key.get("rp"):
        raise ValueError("creation options carry no publicKey challenge")
    expires: datetime | None = mapping.when(inner, "challengeTimeoutDateTime")
    return Fido2CreationOptions(
        public_key=MappingProxyType(public_key), challenge_expires=expires, api_version=version
    )


def classify_fido2_error(err: DirectoryError) -> DirectoryError:
    if not isinstance(err, InvalidRequest):
        return err  # 404 user, 403 permission, throttling and outages keep their meaning
    text = f"{err.code or ''} {err.message}".lower()
    if isinstance(err, AlreadyExists) or ("already" in text and ("regist" in text or "exist" in text)):
        return _recast(err, KeyAlreadyRegistered)
    if "challenge" in text:
        return _recast(err, ChallengeInvalid)
    model_refused = any(w in text for w in _MODEL_WORDS) and any(w in text for w in _REFUSED_WORDS)
    if model_refused or ("attestation" in text and "enforce" in text):
        return _recast(err, KeyModelNotAllowed)
    if any(w in text for w in _VERIFY_WORDS):
        return _recast(err, AttestationRejected)
    return err


def _recast(err: DirectoryError, kind: type[DirectoryError]) -> DirectoryError:
    """Our own sentence replaces Graph's (which could echo input); code, status and request id stay."""
    return kind(code=err.code, status=err.status, request_id=err.request_id, operation=err.operation)
