"""Factory reset: the re-plug dance, the power-up window, the touch, and the same-key check."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2

from agent.keys.devices import HostFacts, KeyDescriptor
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.makecred import create_passkey
from agent.keys.pin import pin_status, set_pin
from agent.keys.reset import ResetTiming, reset_key
from agent.keys.secret import Pin
from agent.keys.timing import ManualTimer
from agent.softkey import (
    SoftAuthenticator,
    SoftCtapDevice,
    SoftHands,
    SoftKeyProfile,
    SoftKeySource,
    Switches,
    Touch,
    Transport,
)
from agent.softkey.demo import entra_creation_options

LINUX = HostFacts("linux")


def _provisioned(key: SoftAuthenticator, pin: Pin) -> None:
    device = SoftCtapDevice(key)
    set_pin(device, pin)
    create_passkey(device, entra_creation_options(), pin)


class SlowHost(SoftKeySource):
    """A host that takes `delay` seconds to open the re-inserted key (slow USB enumeration)."""

    def __init__(self, key: SoftAuthenticator, timer: ManualTimer, delay: float) -> None:
        super().__init__(key)
        self.timer, self.delay = timer, delay

    def open(self, descriptor: KeyDescriptor):  # type: ignore[no-untyped-def]
        if self.opened:
            self.timer.advance(self.delay)
        return super().open(descriptor)


@pytest.mark.parametrize("transport", [Transport.CTAP, Transport.HID])
def test_reset_wipes_the_key_after_remove_insert_touch(
    key: SoftAuthenticator, timer: ManualTimer, pin: Pin, transport: Transport
) -> None:
    _provisioned(key, pin)
    hands = SoftHands(key, timer=timer, pause_s=1.5)

    outcome = reset_key(SoftKeySource(key, transport=transport), hands, timer=timer, facts=LINUX)

    assert hands.asked == ["remove", "insert", "touch"]
    assert key.resets == 1 and key.credentials == []
    assert not pin_status(SoftCtapDevice(key)).is_set
    assert outcome.aaguid == key.profile.aaguid_text
    assert outcome.seconds_after_insert < 1


@pytest.mark.parametrize(
    ("switches", "delay"),
    [
        (Switches(), 10.5),  # CTAP: 10 s window, NOT_ALLOWED when late
        (Switches(reset_window_s=5.0, reset_late_error=CtapError.ERR.PIN_AUTH_BLOCKED), 6.0),  # YubiKey
    ],
)
def test_too_late_for_reset_touches_nothing(
    timer: ManualTimer, pin: Pin, switches: Switches, delay: float
) -> None:
    key = SoftAuthenticator(switches=switches, clock=timer.monotonic)
    _provisioned(key, pin)
    with pytest.raises(KeyOperationError) as caught:
        reset_key(SlowHost(key, timer, delay), SoftHands(key, timer=timer), timer=timer, facts=LINUX)
    assert caught.value.problem is Problem.RESET_TOO_LATE
    assert "re-insert the key promptly" in caught.value.sentence
    assert len(key.credentials) == 1 and key.pin.is_set
    assert key.touch_requests == 1  # only the passkey creation asked for a touch


def test_reset_waits_for_the_touch(key: SoftAuthenticator, timer: ManualTimer, pin: Pin) -> None:
    _provisioned(key, pin)
    key.switches = replace(key.switches, touch=Touch.NOT_GIVEN)
    hands = SoftHands(key, timer=timer)
    with pytest.raises(KeyOperationError) as caught:
        reset_key(SoftKeySource(key), hands, timer=timer, facts=LINUX)
    assert caught.value.problem is Problem.NOT_TOUCHED
    assert hands.asked == ["remove", "insert", "touch"]
    assert len(key.credentials) == 1


def test_a_different_key_coming_back_is_not_reset(timer: ManualTimer, pin: Pin) -> None:
    first = SoftAuthenticator(clock=timer.monotonic)
    other = SoftAuthenticator(
        SoftKeyProfile(aaguid=b"\x11" * 16, serial_number="OTHER"), clock=timer.monotonic
    )
    other.unplug()
    source = SoftKeySource(first, other)

    class SwapHands(SoftHands):
        def insert_key(self, window_s: float) -> None:
            other.plug()  # the technician grabbed another key from the drawer

    with pytest.raises(KeyOperationError) as caught:
        reset_key(source, SwapHands(first, timer=timer), timer=timer, facts=LINUX)
    assert caught.value.problem is Problem.DIFFERENT_KEY
    assert other.resets == first.resets == 0


def test_a_key_that_refuses_the_first_open_is_retried(key: SoftAuthenticator, timer: ManualTimer) -> None:
    """Linux: the hidraw node appears a moment before udev grants access to it."""

    class UdevLag(SoftKeySource):
        refused = 0

        def open(self, descriptor: KeyDescriptor):  # type: ignore[no-untyped-def]
            if self.opened == 1 and not self.refused:  # the first open after re-insertion
                self.refused += 1
                raise KeyOperationError(Problem.ACCESS_DENIED)
            return super().open(descriptor)

    source = UdevLag(key)
    reset_key(source, SoftHands(key, timer=timer), timer=timer, facts=LINUX)
    assert source.refused == 1 and source.opened == 2
    assert key.resets == 1


def test_a_key_never_removed_times_out(key: SoftAuthenticator, timer: ManualTimer) -> None:
    class IdleHands(SoftHands):
        def remove_key(self, descriptor: KeyDescriptor) -> None:
            self.asked.append("remove")  # and nothing happens

    started = timer.monotonic()
    with pytest.raises(KeyOperationError) as caught:
        reset_key(
            SoftKeySource(key),
            IdleHands(key, timer=timer),
            timer=timer,
            timing=ResetTiming(removal_timeout_s=30),
            facts=LINUX,
        )
    assert caught.value.problem is Problem.REPLUG_TIMEOUT
    assert "not removed in time" in caught.value.sentence
    assert 30 <= timer.monotonic() - started < 31
    assert key.resets == 0


def test_several_keys_or_none_are_refused(timer: ManualTimer) -> None:
    one, two = SoftAuthenticator(clock=timer.monotonic), SoftAuthenticator(clock=timer.monotonic)
    with pytest.raises(KeyOperationError) as several:
        reset_key(SoftKeySource(one, two), SoftHands(one, timer=timer), timer=timer, facts=LINUX)
    assert several.value.problem is Problem.SEVERAL_KEYS
    one.unplug()
    two.unplug()
    with pytest.raises(KeyOperationError) as none:
        reset_key(SoftKeySource(one, two), SoftHands(one, timer=timer), timer=timer, facts=LINUX)
    assert none.value.problem is Problem.NO_KEY
    assert "udev rule" in none.value.sentence


def test_the_soft_key_enforces_the_window_itself(key: SoftAuthenticator, timer: ManualTimer) -> None:
    """The rule under the flow: reset is refused 10 s after power-up and allowed after a re-plug."""
    timer.advance(10.5)
    with pytest.raises(CtapError) as late:
        Ctap2(SoftCtapDevice(key)).reset()
    assert late.value.code == CtapError.ERR.NOT_ALLOWED
    key.power_cycle()
    statuses: list[int] = []
    Ctap2(SoftCtapDevice(key)).reset(on_keepalive=statuses.append)
    assert statuses == [2]  # one UPNEEDED keep-alive: the key asked for a touch
    assert key.resets == 1
