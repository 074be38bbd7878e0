"""The agent's job registry: kind -> handler, built on the offline key operations.

`provision` jobs come in phases, one signed job each (the server registers the passkey in Entra in
between, and a key must not force a PIN change before that, see agent/provision.py):

* `create`: check the key, choose the PIN (typed twice by the person at the desk, or random for a key
  prepared for pickup, then sealed to the server's one-time key), create the passkey Entra asked for,
  return the attestation and the key's report. The PIN stays in this process's memory, for a while.
* `finish`: after Graph registered the passkey, force a PIN change at first use and raise the minimum
  PIN length; forget the PIN.
* `discard`: Graph refused the passkey: delete it from the key again; forget the PIN.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent import sealed_pin
from agent.keys.credentials import delete_credential, list_credentials
from agent.keys.devices import HostFacts, KeySource, OpenKey, open_only_key
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.inspect import KeyReport, inspect_key
from agent.keys.metadata import ModelCatalog
from agent.keys.pin import pin_status
from agent.keys.reset import ResetPrompts, ResetTiming, reset_key
from agent.keys.secret import MAX_PIN_BYTES, Pin
from agent.keys.timing import Timer
from agent.link import Job, JobFailed, JobHandler
from agent.provision import Requirements, finish_provisioning, provision, random_pin

Describe = Callable[[KeyReport], dict[str, Any]]


def inspect_handler(source: KeySource, catalog: ModelCatalog, describe: Describe) -> JobHandler:
    def handle(job: Job) -> dict[str, Any]:
        reports = []
        try:
            for descriptor in source.scan():
                key = OpenKey(descriptor, source.open(descriptor))
                try:
                    reports.append(describe(inspect_key(key, catalog=catalog)))
                finally:
                    key.close()
        except KeyOperationError as exc:
            raise JobFailed(exc.sentence) from exc
        return {"keys": reports}

    return handle


def reset_handler(
    source: KeySource,
    prompts: ResetPrompts,
    timer: Timer,
    facts: Callable[[], HostFacts | None],
    *,
    catalog: ModelCatalog | None = None,
    describe: Describe | None = None,
) -> JobHandler:
    def handle(job: Job) -> dict[str, Any]:
        try:
            if not source.scan():
                raise KeyOperationError(Problem.NO_KEY)
            outcome = reset_key(source, prompts, timer=timer, timing=ResetTiming(), facts=facts())
        except KeyOperationError as exc:
            raise JobFailed(exc.sentence) from exc
        result: dict[str, Any] = {
            "reset": True,
            "seconds_after_insert": round(outcome.seconds_after_insert, 2),
        }
        if catalog is not None and describe is not None:
            result["key"] = _describe_reset_key(source, catalog, describe)
        return result

    return handle


def _describe_reset_key(
    source: KeySource, catalog: ModelCatalog, describe: Describe
) -> dict[str, Any] | None:
    """Which key was reset, for the server's inventory (None when it can't be read back: the reset
    itself succeeded, so that must not turn into a failure)."""
    try:
        key = open_only_key(source)
        try:
            return describe(inspect_key(key, catalog=catalog))
        finally:
            key.close()
    except KeyOperationError:
        return None


# --- provisioning ----------------------------------------------------------------------------
HOLD_SECONDS = 15 * 60  # how long the PIN stays in memory waiting for the finish (or discard) job
PIN_MODES = ("at_desk", "pickup")


@dataclass(frozen=True)
class PinQuestion:
    """What the desk's screen asks the person: a new PIN for their key, typed twice."""

    person: str
    min_length: int
    max_length: int = MAX_PIN_BYTES


# Returns the PIN the person typed twice (the screen checks both match and the length), or None when
# they gave up. The CLI asks on the terminal; tests answer directly.
PinPrompt = Callable[[PinQuestion], Pin | None]


@dataclass
class _Held:
    pin: Pin
    requirements: Requirements
    credential_id: bytes
    until: float


@dataclass
class ProvisionHandler:
    """The `provision` job: see the module docstring for its phases."""

    source: KeySource
    catalog: ModelCatalog
    describe: Describe
    ask_pin: PinPrompt | None = None
    say: Callable[[str], None] = lambda _text: None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    _held: dict[str, _Held] = field(default_factory=dict)

    def __call__(self, job: Job) -> dict[str, Any]:
        phase = job.params.get("phase")
        provisioning_id = str(job.params.get("provisioning_id") or "")
        if not provisioning_id:
            raise JobFailed("The provisioning job names no request.")
        self._forget_stale()
        try:
            if phase == "create":
                return self._create(job, provisioning_id)
            if phase == "finish":
                return self._finish(provisioning_id)
            if phase == "discard":
                return self._discard(provisioning_id)
        except KeyOperationError as exc:
            raise JobFailed(exc.sentence) from exc
        raise JobFailed(f"Unknown provisioning step {str(phase)[:20]!r}.")

    # -- create ---------------------------------------------------------------------------------
    def _create(self, job: Job, provisioning_id: str) -> dict[str, Any]:
        params = job.params
        mode = params.get("pin_mode")
        options = params.get("options")
        if mode not in PIN_MODES or not isinstance(options, dict):
            raise JobFailed("The provisioning job is malformed.")
        wanted = Requirements(min_pin_length=_min_length(params.get("min_pin_length")), force_pin_change=True)
        key = open_only_key(self.source)
        try:
            report = inspect_key(key, catalog=self.catalog)
            status = report.pin
            if status.is_set:
                raise JobFailed(
                    "This key already has a PIN, so it was not prepared. Reset it first "
                    "(keydesk-agent reset), or use a new key."
                )
            if status.force_change_pending:
                raise KeyOperationError(Problem.FORCED_PIN_CHANGE_PENDING)
            pin = self._choose_pin(mode, params, wanted, status.min_length)
            self.say("Touch the key when it blinks.")
            try:
                made = provision(
                    key.device,
                    options,
                    pin,
                    wanted,
                    on_touch=lambda: self.say("Touch the key now."),
                    now=self.now,
                )
            except KeyOperationError as exc:
                if pin_status(key.device).is_set:
                    who = "nobody knows" if mode == "pickup" else "the person typed"
                    raise JobFailed(
                        f"{exc.sentence} The key now has a PIN ({who}): reset it before preparing it again."
                    ) from exc
                raise
            result: dict[str, Any] = {
                "phase": "create",
                "public_key_credential": made.public_key_credential(),
                "key": self.describe(report),
                "aaguid": made.aaguid,
            }
            if mode == "pickup":
                result["sealed_pin"] = sealed_pin.seal(
                    pin.reveal(),
                    str(params.get("pin_recipient") or ""),
                    sealed_pin.context(job.id, job.target),
                )
        except sealed_pin.SealError as exc:
            raise JobFailed("The server's key for the PIN is malformed; nothing was registered.") from exc
        finally:
            key.close()
        self._held[provisioning_id] = _Held(pin, wanted, made.credential_id, self.monotonic() + HOLD_SECONDS)
        self.say("Passkey created; the server is registering it with Microsoft Entra.")
        return result

    def _choose_pin(self, mode: str, params: dict[str, Any], wanted: Requirements, key_min: int) -> Pin:
        floor = max(key_min, wanted.min_pin_length or 0)
        if mode == "pickup":
            return random_pin(wanted, key_min_length=key_min)
        if self.ask_pin is None:
            raise JobFailed("This desk has no screen to type a PIN on; prepare the key for pickup instead.")
        person = str(params.get("person") or "the person")[:100]
        self.say(f"Ask {person} to type a new PIN for their key on this screen.")
        pin = self.ask_pin(PinQuestion(person=person, min_length=floor))
        if pin is None:
            raise JobFailed("No PIN was typed at the desk, so the key was not prepared.")
        if pin.length < floor or pin.byte_length > MAX_PIN_BYTES:
            raise JobFailed(f"The PIN must be {floor} to {MAX_PIN_BYTES} characters; nothing was changed.")
        return pin

    # -- finish / discard -------------------------------------------------------------------------
    def _take(self, provisioning_id: str) -> _Held:
        held = self._held.pop(provisioning_id, None)
        if held is None:
            raise JobFailed(
                "This desk no longer holds the PIN of that key (the agent restarted or waited too long), "
                "so it could not finish the key. Reset the key at the desk."
            )
        return held

    def _on_this_key(self, key: OpenKey, held: _Held) -> None:
        ids = {c.credential_id for c in list_credentials(key.device, held.pin)}
        if held.credential_id not in ids:
            raise JobFailed(
                "The key at the desk is not the one that was just prepared. Plug that key back in."
            )

    def _finish(self, provisioning_id: str) -> dict[str, Any]:
        held = self._held.get(provisioning_id)
        if held is None:
            self._take(provisioning_id)  # raises the sentence
        assert held is not None
        key = open_only_key(self.source)
        try:
            self._on_this_key(key, held)
            finish_provisioning(key.device, held.pin, held.requirements)
            status = pin_status(key.device)
        finally:
            key.close()
        self._held.pop(provisioning_id, None)
        self.say("Done: the key asks for a new PIN at first use.")
        return {
            "phase": "finish",
            "force_pin_change_pending": status.force_change_pending,
            "min_pin_length": status.min_length,
        }

    def _discard(self, provisioning_id: str) -> dict[str, Any]:
        held = self._take(provisioning_id)
        key = open_only_key(self.source)
        try:
            self._on_this_key(key, held)
            delete_credential(key.device, held.pin, held.credential_id)
        finally:
            key.close()
        self.say("The passkey Entra refused was deleted from the key. Reset the key before reusing it.")
        return {"phase": "discard", "deleted": True}

    def _forget_stale(self) -> None:
        now = self.monotonic()
        for stale in [k for k, h in self._held.items() if h.until <= now]:
            del self._held[stale]


def _min_length(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 4 <= value <= MAX_PIN_BYTES:
        return value
    return None


def registry(
    source: KeySource,
    catalog: ModelCatalog,
    describe: Describe,
    prompts: ResetPrompts,
    timer: Timer,
    facts: Callable[[], HostFacts | None],
    *,
    ask_pin: PinPrompt | None = None,
    say: Callable[[str], None] = lambda _text: None,
    now: Callable[[], datetime] | None = None,
) -> dict[str, JobHandler]:
    provisioner = ProvisionHandler(source, catalog, describe, ask_pin=ask_pin, say=say)
    if now is not None:
        provisioner.now = now
    return {
        "inspect": inspect_handler(source, catalog, describe),
        "reset": reset_handler(source, prompts, timer, facts, catalog=catalog, describe=describe),
        "provision": provisioner,
    }
