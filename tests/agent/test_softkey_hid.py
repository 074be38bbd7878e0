"""The soft key at the CTAPHID packet level: raw 64-byte packets, then python-fido2's own HID framing."""

from __future__ import annotations

import os
import struct

import pytest
from fido2 import cbor
from fido2.ctap2 import Ctap2
from fido2.hid import CAPABILITY, CTAPHID, CtapHidDevice

from agent.keys.devices import KeyDescriptor, OpenKey
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.inspect import inspect_key
from agent.softkey import SoftAuthenticator, SoftHidConnection, soft_descriptor, soft_hid_device

BROADCAST = 0xFFFFFFFF


def _descriptor(device: CtapHidDevice) -> KeyDescriptor:
    return KeyDescriptor(path=str(device.descriptor.path), serial_number=device.serial_number)


def _packet(channel: int, command: int, payload: bytes, total: int | None = None) -> bytes:
    """An initialisation packet; `total` is the whole message length when continuation packets follow."""
    return (
        struct.pack(">IBH", channel, 0x80 | command, len(payload) if total is None else total) + payload[:57]
    )


def _init(connection: SoftHidConnection) -> int:
    nonce = os.urandom(8)
    connection.write_packet(_packet(BROADCAST, CTAPHID.INIT, nonce))
    reply = connection.read_packet()
    channel, command, length = struct.unpack(">IBH", reply[:7])
    assert (channel, command, length) == (BROADCAST, 0x80 | CTAPHID.INIT, 17)
    assert reply[7:15] == nonce
    return int(struct.unpack(">I", reply[15:19])[0])


def _read_message(connection: SoftHidConnection, channel: int) -> tuple[int, bytes]:
    first = connection.read_packet()
    got_channel, command, length = struct.unpack(">IBH", first[:7])
    assert got_channel == channel
    data, seq = first[7:], 0
    while len(data) < length:
        packet = connection.read_packet()
        assert struct.unpack(">I", packet[:4])[0] == channel and packet[4] == seq
        data += packet[5:]
        seq += 1
    return command & 0x7F, data[:length]


def test_init_allocates_a_channel_and_reports_cbor_capability() -> None:
    key = SoftAuthenticator()
    connection = SoftHidConnection(key)
    nonce = b"12345678"
    connection.write_packet(_packet(BROADCAST, CTAPHID.INIT, nonce))
    reply = connection.read_packet()
    assert len(reply) == 64
    channel, version, major, minor, build, caps = struct.unpack(">IBBBBB", reply[15:24])
    assert channel != BROADCAST and version == 2
    assert (major, minor, build) == key.profile.device_version
    assert caps & CAPABILITY.CBOR and caps & CAPABILITY.WINK and caps & CAPABILITY.NMSG


def test_get_info_comes_back_in_continuation_packets() -> None:
    key = SoftAuthenticator()
    connection = SoftHidConnection(key)
    channel = _init(connection)
    connection.write_packet(_packet(channel, CTAPHID.CBOR, b"\x04"))
    command, data = _read_message(connection, channel)
    assert command == CTAPHID.CBOR and data[0] == 0
    info = cbor.decode(data[1:])
    assert info[3] == key.profile.aaguid and "hmac-secret" in info[2]
    assert len(data) > 57  # more than one packet's worth


def test_a_long_request_is_reassembled_from_continuation_packets() -> None:
    connection = SoftHidConnection(SoftAuthenticator())
    channel = _init(connection)
    payload = os.urandom(200)
    connection.write_packet(_packet(channel, CTAPHID.PING, payload, total=200))
    for seq, start in enumerate(range(57, 200, 59)):
        connection.write_packet(struct.pack(">IB", channel, seq) + payload[start : start + 59])
    assert _read_message(connection, channel) == (CTAPHID.PING, payload)


def test_unknown_channel_and_bad_sequence_are_errors() -> None:
    connection = SoftHidConnection(SoftAuthenticator())
    channel = _init(connection)
    connection.write_packet(_packet(0x0BADCAFE, CTAPHID.CBOR, b"\x04"))
    assert _read_message(connection, 0x0BADCAFE) == (CTAPHID.ERROR, b"\x0b")  # INVALID_CHANNEL
    connection.write_packet(_packet(channel, CTAPHID.PING, os.urandom(100), total=100))
    connection.write_packet(struct.pack(">IB", channel, 5) + b"x" * 59)  # expected seq 0
    assert _read_message(connection, channel) == (CTAPHID.ERROR, b"\x04")  # INVALID_SEQ


def test_keepalive_upneeded_precedes_the_reset_answer() -> None:
    key = SoftAuthenticator()
    connection = SoftHidConnection(key)
    device = CtapHidDevice(soft_descriptor(key), connection)
    seen: list[int] = []
    Ctap2(device).reset(on_keepalive=seen.append)
    assert seen == [2]
    replies = [packet for side, packet in connection.trace if side == "key"]
    kinds = [packet[4] for packet in replies[-2:]]
    assert kinds == [0x80 | CTAPHID.KEEPALIVE, 0x80 | CTAPHID.CBOR]


def test_python_fido2_hid_device_pings_winks_and_inspects() -> None:
    key = SoftAuthenticator()
    device = soft_hid_device(key)
    assert device.ping(b"desk") == b"desk"
    device.wink()
    assert key.winks == 1
    report = inspect_key(OpenKey(_descriptor(device), device))
    assert report.aaguid == key.profile.aaguid_text


def test_unplugging_mid_session_is_key_removed() -> None:
    key = SoftAuthenticator()
    device = soft_hid_device(key)
    key.power_cycle()  # unplugged and back: the old handle is dead, as on a real bus
    with pytest.raises(OSError):
        device.ping()
    with pytest.raises(KeyOperationError) as caught:
        inspect_key(OpenKey(_descriptor(device), device))
    assert caught.value.problem is Problem.KEY_REMOVED
