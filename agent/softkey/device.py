"""The soft key behind python-fido2's `CtapDevice` seam (CBOR level: fast, used by most tests)."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from threading import Event

from fido2.ctap import STATUS, CtapDevice, CtapError
from fido2.hid import CAPABILITY, CTAPHID

from agent.softkey.authenticator import Presence, SoftAuthenticator


def capabilities(key: SoftAuthenticator) -> int:
    # NMSG: no CTAPHID_MSG, i.e. no CTAP1/U2F fallback; a "U2F-only" profile lacks CBOR instead.
    caps = CAPABILITY.WINK | CAPABILITY.NMSG
    return int(caps | CAPABILITY.CBOR) if key.profile.ctap2 else int(caps)


class SoftCtapDevice(CtapDevice):
    def __init__(self, key: SoftAuthenticator) -> None:
        self.key = key
        self._generation = key.generation
        self._closed = False

    @property
    def capabilities(self) -> int:
        return capabilities(self.key)

    @property
    def product_name(self) -> str | None:
        return self.key.profile.product_name

    @property
    def serial_number(self) -> str | None:
        return self.key.profile.serial_number

    @property
    def device_version(self) -> tuple[int, int, int]:
        return self.key.profile.device_version

    def call(
        self,
        cmd: int,
        data: bytes = b"",
        event: Event | None = None,
        on_keepalive: Callable[[STATUS], None] | None = None,
    ) -> bytes:
        if self._closed or not self.key.plugged or self.key.generation != self._generation:
            raise OSError(errno.ENODEV, "the soft key was unplugged")
        if cmd == CTAPHID.CBOR and self.key.profile.ctap2:
            keepalive = (lambda status: on_keepalive(STATUS(status))) if on_keepalive else None
            return self.key.handle(data, Presence(keepalive, event))
        if cmd == CTAPHID.PING:
            return data
        if cmd == CTAPHID.WINK:
            self.key.winks += 1
            return b""
        raise CtapError(CtapError.ERR.INVALID_COMMAND)

    def close(self) -> None:
        self._closed = True

    @classmethod
    def list_devices(cls) -> Iterator[CtapDevice]:
        return iter(())  # soft keys are handed out by SoftKeySource, never discovered
