"""The soft key behind python-fido2's `CtapHidConnection` seam: 64-byte CTAPHID packets (INIT, channel
allocation, CBOR with continuation packets, KEEPALIVE, PING, WINK, ERROR), so python-fido2's real HID
framing runs against it."""

from __future__ import annotations

import errno
import struct
from collections import deque
from dataclasses import dataclass, field

from fido2.ctap import CtapError
from fido2.hid import CTAPHID, CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

from agent.softkey.authenticator import Presence, SoftAuthenticator
from agent.softkey.device import capabilities

PACKET = 64
BROADCAST = 0xFFFFFFFF
TYPE_INIT = 0x80
TEST_VID, TEST_PID = 0x1209, 0x0001  # pid.codes test ids


@dataclass
class _Message:
    channel: int
    command: int
    length: int
    data: bytearray = field(default_factory=bytearray)
    next_seq: int = 0


class SoftHidConnection(CtapHidConnection):
    def __init__(self, key: SoftAuthenticator) -> None:
        self.key = key
        self._generation = key.generation
        self._closed = False
        self._incoming: _Message | None = None
        self._outgoing: deque[bytes] = deque()
        self._channels: set[int] = set()
        self._next_channel = 0x01020304
        self.trace: list[tuple[str, bytes]] = []

    def write_packet(self, data: bytes) -> None:
        self._check_connected()
        packet = bytes(data).ljust(PACKET, b"\0")[:PACKET]
        self.trace.append(("host", packet))
        channel = struct.unpack(">I", packet[:4])[0]
        if packet[4] & TYPE_INIT:
            self._start(channel, packet)
        else:
            self._continue(channel, packet)

    def read_packet(self) -> bytes:
        self._check_connected()
        if not self._outgoing:
            raise OSError(errno.EIO, "the soft key has nothing to send")
        packet = self._outgoing.popleft()
        self.trace.append(("key", packet))
        return packet

    def close(self) -> None:
        self._closed = True

    def _check_connected(self) -> None:
        if self._closed or not self.key.plugged or self.key.generation != self._generation:
            raise OSError(errno.ENODEV, "the soft key was unplugged")

    def _start(self, channel: int, packet: bytes) -> None:
        command = packet[4] & 0x7F
        if command == CTAPHID.CANCEL:
            return  # nothing runs in the background to cancel
        length = struct.unpack(">H", packet[5:7])[0]
        self._incoming = _Message(channel, command, length, bytearray(packet[7 : 7 + length]))
        self._finish_if_complete()

    def _continue(self, channel: int, packet: bytes) -> None:
        message = self._incoming
        if message is None or message.channel != channel or packet[4] != message.next_seq:
            self._incoming = None
            self._send_error(channel, CtapError.ERR.INVALID_SEQ)
            return
        message.next_seq += 1
        message.data += packet[5 : 5 + message.length - len(message.data)]
        self._finish_if_complete()

    def _finish_if_complete(self) -> None:
        message = self._incoming
        if message is not None and len(message.data) >= message.length:
            self._incoming = None
            self._process(message.channel, message.command, bytes(message.data))

    def _process(self, channel: int, command: int, payload: bytes) -> None:
        if command == CTAPHID.INIT:
            self._init(channel, payload)
        elif channel == BROADCAST or channel not in self._channels:
            self._send_error(channel, CtapError.ERR.INVALID_CHANNEL)
        elif command == CTAPHID.PING:
            self._send(channel, command, payload)
        elif command == CTAPHID.WINK:
            self.key.winks += 1
            self._send(channel, command, b"")
        elif command == CTAPHID.CBOR and self.key.profile.ctap2:
            statuses: list[int] = []
            response = self.key.handle(payload, Presence(on_keepalive=statuses.append))
            for status in statuses:
                self._send(channel, CTAPHID.KEEPALIVE, bytes([status]))
            self._send(channel, command, response)
        else:
            self._send_error(channel, CtapError.ERR.INVALID_COMMAND)

    def _init(self, channel: int, nonce: bytes) -> None:
        if len(nonce) != 8:
            self._send_error(channel, CtapError.ERR.INVALID_LENGTH)
            return
        assigned = channel
        if channel == BROADCAST:
            assigned = self._next_channel
            self._next_channel += 1
        self._channels.add(assigned)
        major, minor, build = self.key.profile.device_version
        body = nonce + struct.pack(">IBBBBB", assigned, 2, major, minor, build, capabilities(self.key))
        self._send(channel, CTAPHID.INIT, body)

    def _send_error(self, channel: int, code: int) -> None:
        self._send(channel, CTAPHID.ERROR, bytes([code]))

    def _send(self, channel: int, command: int, payload: bytes) -> None:
        header = struct.pack(">IBH", channel, TYPE_INIT | command, len(payload))
        first, rest = payload[: PACKET - 7], payload[PACKET - 7 :]
        self._outgoing.append((header + first).ljust(PACKET, b"\0"))
        seq = 0
        while rest:
            chunk, rest = rest[: PACKET - 5], rest[PACKET - 5 :]
            self._outgoing.append((struct.pack(">IB", channel, seq) + chunk).ljust(PACKET, b"\0"))
            seq += 1


def soft_descriptor(key: SoftAuthenticator, path: str = "soft:0") -> HidDescriptor:
    profile = key.profile
    return HidDescriptor(
        path, TEST_VID, TEST_PID, PACKET, PACKET, profile.product_name, profile.serial_number
    )


def soft_hid_device(key: SoftAuthenticator, path: str = "soft:0") -> CtapHidDevice:
    """python-fido2's own CtapHidDevice, talking HID packets to the soft key."""
    return CtapHidDevice(soft_descriptor(key, path), SoftHidConnection(key))
