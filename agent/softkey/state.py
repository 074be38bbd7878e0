"""The soft key's mutable memory: stored credentials, PIN state, the current PIN/UV auth token."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec


class Perm(IntFlag):
    MC = 0x01
    GA = 0x02
    CM = 0x04
    BE = 0x08
    LBW = 0x10
    ACFG = 0x20


@dataclass
class Credential:
    credential_id: bytes
    rp_id: str
    rp_name: str | None
    user: dict[str, Any]
    private_key: ec.EllipticCurvePrivateKey
    discoverable: bool
    cred_protect: int = 1
    cred_random: bytes | None = None
    sign_count: int = 0

    @property
    def user_id(self) -> bytes:
        return bytes(self.user["id"])


@dataclass
class PinState:
    pin_hash: bytes | None = None  # LEFT(SHA-256(PIN), 16)
    code_points: int = 0
    retries: int = 8
    failures_since_boot: int = 0
    force_change: bool = False
    min_length: int = 4
    min_length_rp_ids: list[str] = field(default_factory=list)

    @property
    def is_set(self) -> bool:
        return self.pin_hash is not None


@dataclass
class Token:
    value: bytes = field(default_factory=lambda: os.urandom(32))
    permissions: int = 0
    rp_id: str | None = None

    def regenerate(self) -> None:
        self.value = os.urandom(32)
        self.permissions = 0
        self.rp_id = None


@dataclass
class Enumeration:
    """Where a credential-management or getNextAssertion enumeration stands."""

    commands: tuple[int, ...]  # the commands that may continue it
    items: list[Any]
    position: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
