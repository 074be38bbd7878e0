"""Finding security keys: a `KeySource` seam (real USB HID keys via python-fido2, or the soft key),
and the host checks that explain why no key shows up (Linux udev rule, Windows elevation)."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from fido2.ctap import CtapDevice

from agent.keys.errors import KeyOperationError, Problem

UDEV_RULE_FILE = "/etc/udev/rules.d/70-keydesk-fido.rules"
UDEV_RULE = 'SUBSYSTEM=="hidraw", ENV{ID_FIDO_TOKEN}=="1", GROUP="keydesk", MODE="0660"'


@dataclass(frozen=True)
class KeyDescriptor:
    """A key seen on the bus, before it is opened. `serial_number` is None when the key hides it."""

    path: str
    product_name: str | None = None
    serial_number: str | None = None
    vendor_id: int | None = None
    product_id: int | None = None


class KeySource(Protocol):
    """Where keys come from. Business logic never calls `fido2.hid` directly, so tests plug in soft keys."""

    def scan(self) -> list[KeyDescriptor]: ...

    def open(self, descriptor: KeyDescriptor) -> CtapDevice: ...


@dataclass(frozen=True)
class OpenKey:
    descriptor: KeyDescriptor
    device: CtapDevice

    def close(self) -> None:
        with suppress(OSError):  # closing twice, or a key already pulled out
            self.device.close()


class HidKeySource:
    """USB keys through python-fido2's HID backend (Linux hidraw, Windows HID, macOS IOKit)."""

    def __init__(self) -> None:
        self._raw: dict[
            str, Any
        ] = {}  # our path text -> python-fido2's HidDescriptor (bytes path on Windows)

    def scan(self) -> list[KeyDescriptor]:
        from fido2.hid import list_descriptors

        found = []
        for raw in list_descriptors():
            descriptor = _to_descriptor(raw)
            self._raw[descriptor.path] = raw
            found.append(descriptor)
        return found

    def open(self, descriptor: KeyDescriptor) -> CtapDevice:
        from fido2.hid import CtapHidDevice, get_descriptor, open_connection

        try:
            raw = self._raw.get(descriptor.path) or get_descriptor(descriptor.path)
            return CtapHidDevice(raw, open_connection(raw))
        except PermissionError as exc:
            raise KeyOperationError(Problem.ACCESS_DENIED, access_hint(host_facts())) from exc
        except OSError as exc:
            raise KeyOperationError(Problem.KEY_REMOVED) from exc


def _to_descriptor(raw: object) -> KeyDescriptor:
    path = getattr(raw, "path", "")
    return KeyDescriptor(
        path=path.decode() if isinstance(path, bytes) else str(path),
        product_name=getattr(raw, "product_name", None),
        serial_number=getattr(raw, "serial_number", None) or None,
        vendor_id=getattr(raw, "vid", None),
        product_id=getattr(raw, "pid", None),
    )


def open_only_key(source: KeySource, facts: HostFacts | None = None) -> OpenKey:
    """Open the one key on the desk; refuse when there is none (with a hint why) or several."""
    found = source.scan()
    if not found:
        raise KeyOperationError(Problem.NO_KEY, access_hint(facts or host_facts()))
    if len(found) > 1:
        raise KeyOperationError(Problem.SEVERAL_KEYS)
    return OpenKey(found[0], source.open(found[0]))


@dataclass(frozen=True)
class HostFacts:
    """What the host says about key access: platform, elevation (Windows), unreadable hidraw nodes (Linux)."""

    platform: str
    is_admin: bool | None = None
    unreadable_hid_nodes: tuple[str, ...] = field(default_factory=tuple)


def host_facts(
    platform: str = sys.platform,
    is_admin: Callable[[], bool | None] | None = None,
    hidraw_nodes: Callable[[], Sequence[str]] | None = None,
) -> HostFacts:
    if platform == "win32":
        return HostFacts(platform, is_admin=(is_admin or windows_is_admin)())
    if platform.startswith("linux"):
        nodes = (hidraw_nodes or _hidraw_nodes)()
        return HostFacts(platform, unreadable_hid_nodes=tuple(n for n in nodes if not _can_open(n)))
    return HostFacts(platform)


def windows_is_admin() -> bool | None:
    """True when the process is elevated; None when it cannot be told (not Windows)."""
    if sys.platform == "win32":
        import ctypes

        try:
            return bool(ctypes.windll.shell32.IsUserAnAdmin())
        except (AttributeError, OSError):
            return None
    return None


def check_host(facts: HostFacts) -> None:
    """Refuse early where key access cannot work at all: a non-elevated process on Windows."""
    if facts.platform == "win32" and facts.is_admin is False:
        raise KeyOperationError(Problem.NOT_ELEVATED)


def access_hint(facts: HostFacts) -> str | None:
    """Why a key may be invisible on this host, and what to do, or None when there is nothing to say."""
    if facts.platform == "win32" and facts.is_admin is False:
        return "This window is not running as Administrator, which Windows requires for security keys."
    if not facts.platform.startswith("linux"):
        return None
    rule = f"install the udev rule ({UDEV_RULE_FILE}, see the README section 'Linux: the udev rule'), then re-plug the key"
    if facts.unreadable_hid_nodes:
        nodes = ", ".join(facts.unreadable_hid_nodes)
        return f"This account cannot open {nodes}: {rule}."
    return f"If a key is plugged in but not found, this account may lack access to it: {rule}."


def _hidraw_nodes() -> list[str]:
    return sorted(glob.glob("/dev/hidraw*"))


def _can_open(path: str) -> bool:
    return os.access(path, os.R_OK | os.W_OK)
