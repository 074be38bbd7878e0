"""Factory reset with the re-plug dance: a key accepts reset only in the first seconds after power-up
(10 s in CTAP, 5 s on YubiKeys), then wants a touch. The agent asks for removal, waits for the key to
go, asks for re-insertion, checks the same key came back (whole GetInfo, like ykman), and resets at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from threading import Event
from typing import Any, Protocol

from fido2.ctap import STATUS
from fido2.ctap2 import Info

from agent.keys.devices import HostFacts, KeyDescriptor, KeySource, OpenKey, access_hint, host_facts
from agent.keys.errors import KeyOperationError, Operation, Problem
from agent.keys.metadata import normalise_aaguid
from agent.keys.session import open_ctap2, translated
from agent.keys.timing import SystemTimer, Timer


class ResetPrompts(Protocol):
    """What the technician is told, step by step. Implementations only show; they never block."""

    def remove_key(self, descriptor: KeyDescriptor) -> None: ...

    def insert_key(self, window_s: float) -> None: ...

    def touch_key(self, long_touch: bool) -> None: ...


@dataclass(frozen=True)
class ResetTiming:
    window_s: float = 10.0
    removal_timeout_s: float = 60.0
    insertion_timeout_s: float = 60.0
    poll_s: float = 0.1
    open_retry_s: float = 1.5


@dataclass(frozen=True)
class ResetOutcome:
    descriptor: KeyDescriptor
    aaguid: str
    seconds_after_insert: float


def reset_key(
    source: KeySource,
    prompts: ResetPrompts,
    *,
    timer: Timer | None = None,
    timing: ResetTiming = ResetTiming(),
    facts: HostFacts | None = None,
    event: Event | None = None,
) -> ResetOutcome:
    """Erase every passkey and the PIN of the one key on the desk. Destructive: confirm before calling."""
    clock = timer or SystemTimer()
    before, fingerprint, long_touch = _look_before(source, facts)
    prompts.remove_key(before)
    _wait_for(source, clock, timing, present=False, timeout=timing.removal_timeout_s)
    prompts.insert_key(timing.window_s)
    found = _wait_for(source, clock, timing, present=True, timeout=timing.insertion_timeout_s)
    inserted_at = clock.monotonic()
    if len(found) > 1:
        raise KeyOperationError(Problem.SEVERAL_KEYS)
    key = _open_soon(source, found[0], clock, timing)
    try:
        aaguid = _reset_same_key(key, before, fingerprint, lambda: prompts.touch_key(long_touch), event)
    finally:
        key.close()
    return ResetOutcome(key.descriptor, aaguid, clock.monotonic() - inserted_at)


def _look_before(source: KeySource, facts: HostFacts | None) -> tuple[KeyDescriptor, dict[int, Any], bool]:
    found = source.scan()
    if not found:
        raise KeyOperationError(Problem.NO_KEY, access_hint(facts or host_facts()))
    if len(found) > 1:
        raise KeyOperationError(Problem.SEVERAL_KEYS)
    key = OpenKey(found[0], source.open(found[0]))
    try:
        ctap2 = open_ctap2(key.device)
        with translated(Operation.INFO, ctap2):
            info = ctap2.get_info()
    finally:
        key.close()
    if info.transports_for_reset and "usb" not in info.transports_for_reset:
        raise KeyOperationError(Problem.DENIED, "This key allows a reset only over NFC.")
    return key.descriptor, _fingerprint(info), bool(info.long_touch_for_reset)


def _wait_for(
    source: KeySource, timer: Timer, timing: ResetTiming, *, present: bool, timeout: float
) -> list[KeyDescriptor]:
    deadline = timer.monotonic() + timeout
    while True:
        found = source.scan()
        if bool(found) == present:
            return found
        if timer.monotonic() >= deadline:
            what = "inserted again" if present else "removed"
            raise KeyOperationError(
                Problem.REPLUG_TIMEOUT, f"The key was not {what} in time. Nothing was reset."
            )
        timer.sleep(timing.poll_s)


def _open_soon(source: KeySource, descriptor: KeyDescriptor, timer: Timer, timing: ResetTiming) -> OpenKey:
    """A freshly inserted key can refuse the first open (Linux: udev has not applied the rule yet)."""
    deadline = timer.monotonic() + timing.open_retry_s
    while True:
        try:
            return OpenKey(descriptor, source.open(descriptor))
        except KeyOperationError as exc:
            if (
                exc.problem not in (Problem.ACCESS_DENIED, Problem.KEY_REMOVED)
                or timer.monotonic() >= deadline
            ):
                raise
        timer.sleep(timing.poll_s)


def _reset_same_key(
    key: OpenKey,
    before: KeyDescriptor,
    fingerprint: dict[int, Any],
    on_touch: Callable[[], None],
    event: Event | None,
) -> str:
    ctap2 = open_ctap2(key.device)
    with translated(Operation.RESET, ctap2):
        info = ctap2.get_info()
        if _fingerprint(info) != fingerprint or not _same_serial(before, key.descriptor):
            raise KeyOperationError(Problem.DIFFERENT_KEY)
        ctap2.reset(event=event, on_keepalive=_touch_prompt(on_touch))
    return normalise_aaguid(bytes(info.aaguid))


def _touch_prompt(on_touch: Callable[[], None]) -> Callable[[int], None]:
    def on_keepalive(status: int) -> None:
        if status == STATUS.UPNEEDED:
            on_touch()

    return on_keepalive


def _fingerprint(info: Info) -> dict[int, Any]:
    """GetInfo minus the fields that change on every power-up (encrypted identifiers)."""
    return dict(replace(info, enc_identifier=None, enc_cred_store_state=None))


def _same_serial(before: KeyDescriptor, after: KeyDescriptor) -> bool:
    if before.serial_number and after.serial_number:
        return before.serial_number == after.serial_number
    return True
