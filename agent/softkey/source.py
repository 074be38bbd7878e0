"""A desk with soft keys: a `KeySource` for the agent's flows, and "hands" that unplug and re-insert
a soft key when the reset flow asks the technician to."""

from __future__ import annotations

from enum import StrEnum

from fido2.ctap import CtapDevice

from agent.keys.devices import KeyDescriptor
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.reset import ResetPrompts
from agent.keys.timing import SystemTimer, Timer
from agent.softkey.authenticator import SoftAuthenticator
from agent.softkey.device import SoftCtapDevice
from agent.softkey.hid import TEST_PID, TEST_VID, soft_hid_device


class Transport(StrEnum):
    CTAP = "ctap"  # SoftCtapDevice: CBOR straight in
    HID = "hid"  # python-fido2's CtapHidDevice over SoftHidConnection packets


class SoftKeySource:
    def __init__(self, *keys: SoftAuthenticator, transport: Transport = Transport.CTAP) -> None:
        self.keys = list(keys)
        self.transport = transport
        self.opened = 0

    def scan(self) -> list[KeyDescriptor]:
        return [self._descriptor(i, key) for i, key in enumerate(self.keys) if key.plugged]

    def open(self, descriptor: KeyDescriptor) -> CtapDevice:
        key = self._key(descriptor.path)
        if not key.plugged:
            raise KeyOperationError(Problem.KEY_REMOVED)
        self.opened += 1
        if self.transport is Transport.HID:
            return soft_hid_device(key, descriptor.path)
        return SoftCtapDevice(key)

    def _key(self, path: str) -> SoftAuthenticator:
        try:
            return self.keys[int(path.removeprefix("soft:"))]
        except (ValueError, IndexError) as exc:
            raise KeyOperationError(Problem.KEY_REMOVED) from exc

    @staticmethod
    def _descriptor(index: int, key: SoftAuthenticator) -> KeyDescriptor:
        return KeyDescriptor(
            path=f"soft:{index}",
            product_name=key.profile.product_name,
            serial_number=key.profile.serial_number,
            vendor_id=TEST_VID,
            product_id=TEST_PID,
        )


class SoftHands:
    """Does what the reset prompts ask, to a soft key, after showing them (demos and tests)."""

    def __init__(
        self,
        key: SoftAuthenticator,
        shown: ResetPrompts | None = None,
        *,
        timer: Timer | None = None,
        pause_s: float = 0.0,
    ) -> None:
        self.key = key
        self.shown = shown
        self.timer = timer or SystemTimer()
        self.pause_s = pause_s
        self.asked: list[str] = []

    def remove_key(self, descriptor: KeyDescriptor) -> None:
        self.asked.append("remove")
        if self.shown:
            self.shown.remove_key(descriptor)
        self.timer.sleep(self.pause_s)
        self.key.unplug()

    def insert_key(self, window_s: float) -> None:
        self.asked.append("insert")
        if self.shown:
            self.shown.insert_key(window_s)
        self.timer.sleep(self.pause_s)
        self.key.plug()

    def touch_key(self, long_touch: bool) -> None:
        self.asked.append("touch")
        if self.shown:
            self.shown.touch_key(long_touch)
