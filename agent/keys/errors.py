"""Typed errors for key operations, each with a plain sentence a technician can act on.

Library code raises `KeyOperationError`; the CLI (and later the server link) shows `.sentence`.
Sentences never contain a PIN or any other secret.
"""

from __future__ import annotations

from enum import StrEnum

from fido2.ctap import CtapError

ERR = CtapError.ERR


class Problem(StrEnum):
    NO_KEY = "no_key"
    SEVERAL_KEYS = "several_keys"
    ACCESS_DENIED = "access_denied"
    NOT_ELEVATED = "not_elevated"
    NOT_FIDO2 = "not_fido2"
    KEY_REMOVED = "key_removed"
    WRONG_PIN = "wrong_pin"
    PIN_AUTH_BLOCKED = "pin_auth_blocked"
    PIN_BLOCKED = "pin_blocked"
    PIN_NOT_SET = "pin_not_set"
    PIN_REQUIRED = "pin_required"
    PIN_ALREADY_SET = "pin_already_set"
    PIN_REJECTED = "pin_rejected"
    POLICY_REJECTED = "policy_rejected"
    FORCED_PIN_CHANGE_PENDING = "forced_pin_change_pending"
    RESET_TOO_LATE = "reset_too_late"
    DENIED = "denied"
    NOT_TOUCHED = "not_touched"
    KEY_FULL = "key_full"
    ALREADY_REGISTERED = "already_registered"
    DIFFERENT_KEY = "different_key"
    REPLUG_TIMEOUT = "replug_timeout"
    NOT_SUPPORTED = "not_supported"
    EXTENSION_DROPPED = "extension_dropped"
    CREDENTIAL_NOT_FOUND = "credential_not_found"
    BAD_OPTIONS = "bad_options"
    CHALLENGE_EXPIRED = "challenge_expired"
    CANCELLED = "cancelled"
    UNEXPECTED = "unexpected"


class Operation(StrEnum):
    """What the agent was doing when the key said no (the same CTAP code means different things)."""

    INFO = "info"
    PIN_TOKEN = "pin_token"  # noqa: S105 (an operation name, not a secret)
    SET_PIN = "set_pin"
    CHANGE_PIN = "change_pin"
    CONFIG = "config"
    CREDENTIALS = "credentials"
    MAKE_CREDENTIAL = "make_credential"
    RESET = "reset"


_SENTENCES: dict[Problem, str] = {
    Problem.NO_KEY: "No security key found. Plug one in and try again.",
    Problem.SEVERAL_KEYS: "More than one security key is plugged in. Leave only the key you want to work on.",
    Problem.ACCESS_DENIED: "This account is not allowed to open the security key.",
    Problem.NOT_ELEVATED: (
        "On Windows the agent must run as Administrator to talk to security keys directly "
        "(Windows 10 version 1903 and later reserve raw key access to elevated programs). "
        "Close this window, right-click the terminal or keydesk-agent, choose "
        "'Run as administrator', and start again."
    ),
    Problem.NOT_FIDO2: (
        "This device is not a FIDO2 security key (it may be an older U2F-only key). "
        "It cannot hold passkeys for Microsoft Entra."
    ),
    Problem.KEY_REMOVED: (
        "The key was unplugged, or stopped answering, in the middle of the operation. "
        "Plug it back in and start again."
    ),
    Problem.WRONG_PIN: "That PIN is not right.",
    Problem.PIN_AUTH_BLOCKED: (
        "Three wrong PINs in a row: the key wants a break. Unplug it, plug it back in, then try again."
    ),
    Problem.PIN_BLOCKED: (
        "The PIN is blocked after too many wrong tries. Only a reset makes the key usable again, "
        "and a reset erases every passkey on it."
    ),
    Problem.PIN_NOT_SET: "This key has no PIN yet. Set a PIN first.",
    Problem.PIN_REQUIRED: "This key has a PIN. Enter it to continue.",
    Problem.PIN_ALREADY_SET: (
        "This key already has a PIN. Change it with the current PIN, or reset the key."
    ),
    Problem.PIN_REJECTED: "The key did not accept the new PIN.",
    Problem.POLICY_REJECTED: (
        "The key refused the PIN setting: a minimum PIN length can only be raised, "
        "never lowered (a reset brings back the factory value)."
    ),
    Problem.FORCED_PIN_CHANGE_PENDING: (
        "This key is waiting for its PIN to be changed (a forced PIN change is pending), "
        "so it refuses everything else. Change the PIN first, or reset the key."
    ),
    Problem.RESET_TOO_LATE: (
        "Too late for a reset: a key accepts a reset only in the first seconds after it is "
        "plugged in. Run the reset again and re-insert the key promptly when asked."
    ),
    Problem.DENIED: (
        "The key refused: the request was declined on the key, or this key does not allow it over USB."
    ),
    Problem.NOT_TOUCHED: ("The key was not touched in time. Run it again and touch the key when it blinks."),
    Problem.KEY_FULL: ("The key has no room for another passkey. Delete one it holds, or reset it."),
    Problem.ALREADY_REGISTERED: ("This key already holds a passkey for this person. Nothing was changed."),
    Problem.DIFFERENT_KEY: ("The key that came back is not the one that was removed. Nothing was reset."),
    Problem.REPLUG_TIMEOUT: "Gave up waiting for the key.",
    Problem.NOT_SUPPORTED: "This key does not support that.",
    Problem.EXTENSION_DROPPED: (
        "The key created the passkey without a feature Microsoft Entra asks for, so it was not kept."
    ),
    Problem.CREDENTIAL_NOT_FOUND: "No passkey with that id is on this key.",
    Problem.BAD_OPTIONS: "The passkey request from Microsoft Entra could not be read.",
    Problem.CHALLENGE_EXPIRED: (
        "The passkey request from Microsoft Entra has expired, so the key was not touched. "
        "Start the provisioning again to get a fresh one."
    ),
    Problem.CANCELLED: "The operation was cancelled, or timed out, before the key answered.",
    Problem.UNEXPECTED: "The key answered with an error the agent does not know.",
}


class KeyOperationError(Exception):
    """A key operation failed; `.sentence` says what happened and what to do, in plain words."""

    def __init__(
        self,
        problem: Problem,
        detail: str | None = None,
        *,
        ctap_code: int | None = None,
        retries_left: int | None = None,
    ) -> None:
        self.problem = problem
        self.detail = detail
        self.ctap_code = ctap_code
        self.retries_left = retries_left
        super().__init__(self.sentence)

    @property
    def sentence(self) -> str:
        parts = [_SENTENCES[self.problem]]
        if self.detail:
            parts.append(self.detail)
        if self.retries_left is not None and self.problem in (Problem.WRONG_PIN, Problem.PIN_AUTH_BLOCKED):
            parts.append(_retries_sentence(self.retries_left))
        return " ".join(parts)


def _retries_sentence(retries: int) -> str:
    if retries == 1:
        return "One try left: after one more wrong PIN only a reset helps."
    return f"{retries} tries left before the PIN locks."


def from_ctap(
    code: int,
    op: Operation,
    *,
    force_change_pending: bool = False,
    retries_left: int | None = None,
) -> KeyOperationError:
    """Turn a CTAP status code into a typed error, using what the agent was doing to disambiguate."""
    problem, detail = _classify(code, op, force_change_pending)
    if problem is Problem.UNEXPECTED:
        detail = f"Error {_code_name(code)} during {op.value}."
    elif problem is Problem.PIN_REJECTED:
        detail = "It must be long enough for the key's minimum and, when a change is forced, differ from the current PIN."
    return KeyOperationError(problem, detail, ctap_code=code, retries_left=retries_left)


def _classify(code: int, op: Operation, force_change_pending: bool) -> tuple[Problem, str | None]:
    if code == ERR.PIN_POLICY_VIOLATION:
        return _policy_violation(op, force_change_pending), None
    if code in (ERR.NOT_ALLOWED, ERR.PIN_AUTH_BLOCKED) and op is Operation.RESET:
        return Problem.RESET_TOO_LATE, None
    if code == ERR.NOT_ALLOWED and op is Operation.SET_PIN:
        return Problem.PIN_ALREADY_SET, None
    simple = _SIMPLE.get(code)
    if simple is not None:
        return simple, None
    return Problem.UNEXPECTED, None


def _policy_violation(op: Operation, force_change_pending: bool) -> Problem:
    if op in (Operation.SET_PIN, Operation.CHANGE_PIN):
        return Problem.PIN_REJECTED
    if force_change_pending:
        return Problem.FORCED_PIN_CHANGE_PENDING
    if op is Operation.CONFIG:
        return Problem.POLICY_REJECTED
    return Problem.FORCED_PIN_CHANGE_PENDING


_SIMPLE: dict[int, Problem] = {
    ERR.PIN_INVALID: Problem.WRONG_PIN,
    ERR.PIN_AUTH_BLOCKED: Problem.PIN_AUTH_BLOCKED,
    ERR.PIN_BLOCKED: Problem.PIN_BLOCKED,
    ERR.PIN_NOT_SET: Problem.PIN_NOT_SET,
    ERR.PUAT_REQUIRED: Problem.PIN_REQUIRED,
    ERR.USER_ACTION_TIMEOUT: Problem.NOT_TOUCHED,
    ERR.ACTION_TIMEOUT: Problem.NOT_TOUCHED,
    ERR.OPERATION_DENIED: Problem.DENIED,
    ERR.KEEPALIVE_CANCEL: Problem.CANCELLED,
    ERR.CREDENTIAL_EXCLUDED: Problem.ALREADY_REGISTERED,
    ERR.KEY_STORE_FULL: Problem.KEY_FULL,
    ERR.NO_CREDENTIALS: Problem.CREDENTIAL_NOT_FOUND,
}


def _code_name(code: int) -> str:
    try:
        return f"0x{code:02X} {ERR(code).name}"
    except ValueError:
        return f"0x{code:02X}"
