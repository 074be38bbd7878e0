"""Fixtures for the desk agent: soft keys on a hand-moved clock and Entra-shaped creation options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agent.keys.secret import Pin
from agent.keys.timing import ManualTimer
from agent.softkey import SoftAuthenticator, SoftCtapDevice
from agent.softkey.demo import entra_creation_options

PIN_TEXT = "482915"


@pytest.fixture
def timer() -> ManualTimer:
    return ManualTimer()


@pytest.fixture
def key(timer: ManualTimer) -> SoftAuthenticator:
    return SoftAuthenticator(clock=timer.monotonic)


@pytest.fixture
def device(key: SoftAuthenticator) -> SoftCtapDevice:
    return SoftCtapDevice(key)


@pytest.fixture
def pin() -> Pin:
    return Pin(PIN_TEXT)


@pytest.fixture
def options() -> Callable[..., dict[str, Any]]:
    return entra_creation_options
